//! The HTTP API and dashboard (axum): `GET /api/buildings`,
//! `GET /api/buildings/{id}`, maintenance windows under
//! `/api/buildings/{id}/maintenance`, chart history at
//! `GET /api/buildings/{id}/points/{point}/history`, hazard items under
//! `/api/hazards`, the alert outbox under `/api/notifications`,
//! `GET /api/gateways`, `GET /api/gateways/{id}`,
//! monthly statistics and their CSV/XLSX export under `/api/statistics`,
//! sign-in, users and tokens (`auth`), live changes at `GET /api/events`,
//! `GET|POST /ack/{token}` (acknowledging from an alert's link),
//! `GET /healthz`, `GET /metrics`, this API's OpenAPI document at
//! `GET /api/openapi.json` (`openapi`), and the dashboard at `GET /` and
//! `/assets/…` (`web`).

mod ack;
mod auth;
mod error;
mod events;
mod gateways;
mod hazards;
mod history;
mod maintenance;
mod notifications;
mod openapi;
mod statistics;
mod web;

pub use auth::{COOKIE, CSRF_HEADER};
pub use error::{ApiError, ErrorBody, json_body, page};
pub use gateways::{GatewayOut, SequenceOut};

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use riser_contract::{ClockFlag, Quality};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::App;
use crate::auth::Principal;
use crate::registry::Building;
use crate::rules::{self, Lang, Reason, Status};
use crate::store::StoredVerdict;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/assets/{*path}", get(web::asset))
        .route("/api/buildings", get(list_buildings))
        .route("/api/events", get(events::stream))
        .route("/api/buildings/{id}", get(get_building))
        .route(
            "/api/buildings/{id}/maintenance",
            get(maintenance::list).post(maintenance::set),
        )
        .route(
            "/api/buildings/{id}/maintenance/end",
            post(maintenance::end),
        )
        .route(
            "/api/buildings/{id}/points/{point}/history",
            get(history::get),
        )
        .route("/api/hazards", get(hazards::list))
        .route("/api/notifications", get(notifications::list))
        .route(
            "/api/notifications/digests/{id}",
            get(notifications::digest),
        )
        .route("/api/hazards/{id}", get(hazards::get))
        .route(
            "/api/hazards/{id}/acknowledge",
            axum::routing::post(hazards::acknowledge),
        )
        .route(
            "/api/hazards/{id}/remarks",
            axum::routing::post(hazards::remark),
        )
        .route(
            "/api/hazards/{id}/close",
            axum::routing::post(hazards::close),
        )
        .route("/api/gateways", get(gateways::list))
        .route("/api/gateways/{id}", get(gateways::get))
        .route("/ack/{token}", get(ack::show).post(ack::acknowledge))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .merge(auth::routes())
        .merge(statistics::routes())
        .with_state(app)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub lang: Lang,
}

/// A reason as served: its words in the asked language.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReasonOut {
    pub code: rules::Code,
    pub message: String,
    pub point: Option<String>,
    pub value: Option<f64>,
    pub required: Option<f64>,
    pub clause: Option<String>,
    /// When the condition began (reading time).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<time::OffsetDateTime>,
    /// Still shown by the latest reading (`false` while it waits out its
    /// clear-duration): only current reasons page anyone.
    pub current: bool,
    /// `tank_volume_falling`: hours until the required volume is crossed.
    #[serde(default)]
    pub hours: Option<f64>,
    /// `maintenance`: when it ends.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<time::OffsetDateTime>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildingSummary {
    pub id: String,
    pub name: String,
    pub district: String,
    pub town: String,
    pub community: String,
    pub address: Option<String>,
    /// Its maintenance contractor (维保单位), as the registry names it.
    pub contractor: Option<String>,
    pub status: Status,
    pub reasons: Vec<ReasonOut>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointOut {
    pub point: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    #[schema(value_type = openapi::QualityDoc)]
    pub quality: Quality,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<u8>,
    /// The time it is judged at: the arrival time when the gateway's clock
    /// was not trusted (then `gateway_ts` is what the gateway said).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The gateway's clock flag: `restamped`, `jumped` or `unsynced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::ClockFlagDoc>)]
    pub clock: Option<ClockFlag>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub gateway_ts: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requirements {
    /// Minimum effective tank volume, m³ (GB 50974-2014 5.2.1); null where none is required.
    pub tank_volume_m3: Option<f64>,
    /// Minimum static pressure at the most unfavourable point, MPa (5.2.2).
    pub static_pressure_mpa: f64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildingDetail {
    #[serde(flatten)]
    pub summary: BuildingSummary,
    pub height_m: f64,
    pub storeys: u32,
    pub class: rules::BuildingClass,
    pub class_name: String,
    pub gateway: String,
    pub requirements: Requirements,
    pub points: Vec<PointOut>,
    /// Who answers for it (逐栋明确): management unit, contractor,
    /// building manager, with their phone numbers and e-mail addresses.
    pub parties: PartiesOut,
}

/// A building's parties and how to reach them: the registry's names and
/// the contractor's duty e-mail, plus the phone numbers and e-mail
/// addresses `[[notify.party]]` gives each (never robot or webhook
/// addresses: those carry credentials).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartiesOut {
    pub management_unit: Option<String>,
    pub management_unit_phone: Vec<String>,
    pub management_unit_email: Vec<String>,
    pub contractor: Option<String>,
    pub contractor_phone: Vec<String>,
    pub contractor_email: Vec<String>,
    pub building_manager: Option<String>,
    pub building_manager_phone: Vec<String>,
    pub building_manager_email: Vec<String>,
}

fn parties_out(app: &App, b: &Building) -> PartiesOut {
    use crate::notify::channel::Target;
    let reach = |name: &Option<String>| {
        let (mut phones, mut emails) = (Vec::new(), Vec::new());
        let targets = app
            .contacts
            .party
            .iter()
            .filter(|p| Some(&p.name) == name.as_ref())
            .flat_map(|p| &p.targets);
        for target in targets {
            match target {
                Target::Sms { phone } => phones.push(phone.clone()),
                Target::Email { to } => emails.push(to.clone()),
                _ => {}
            }
        }
        (phones, emails)
    };
    let p = &b.parties;
    let (management_unit_phone, management_unit_email) = reach(&p.management_unit);
    let (contractor_phone, mut contractor_email) = reach(&p.contractor);
    if let Some(duty) = &p.contractor_email
        && !contractor_email.contains(duty)
    {
        contractor_email.insert(0, duty.clone());
    }
    let (building_manager_phone, building_manager_email) = reach(&p.building_manager);
    PartiesOut {
        management_unit: p.management_unit.clone(),
        management_unit_phone,
        management_unit_email,
        contractor: p.contractor.clone(),
        contractor_phone,
        contractor_email,
        building_manager: p.building_manager.clone(),
        building_manager_phone,
        building_manager_email,
    }
}

fn reasons_out(reasons: &[Reason], lang: Lang) -> Vec<ReasonOut> {
    reasons
        .iter()
        .map(|r| ReasonOut {
            code: r.code,
            message: rules::render(r, lang),
            point: r.point.clone(),
            value: r.value,
            required: r.required,
            clause: r.clause.clone(),
            since: r.since,
            current: r.current,
            hours: r.hours,
            until: r.until,
        })
        .collect()
}

fn summary(b: &Building, verdict: Option<&StoredVerdict>, lang: Lang) -> BuildingSummary {
    BuildingSummary {
        id: b.id.clone(),
        name: b.name.clone(),
        district: b.district.clone(),
        town: b.town.clone(),
        community: b.community.clone(),
        address: b.address.clone(),
        contractor: b.parties.contractor.clone(),
        status: verdict.map_or(Status::Unknown, |v| v.status),
        reasons: verdict.map_or_else(Vec::new, |v| reasons_out(&v.reasons, lang)),
        updated_at: verdict.map(|v| v.updated_at),
    }
}

/// The ids of the buildings `principal` sees; `None` when every one.
pub(crate) fn within(app: &App, principal: &Principal) -> Option<Vec<String>> {
    let buildings = app.registry.buildings();
    let seen: Vec<String> = buildings
        .iter()
        .filter(|b| principal.sees(b))
        .map(|b| b.id.clone())
        .collect();
    (seen.len() < buildings.len()).then_some(seen)
}

/// Building `id` if `principal` sees it; one it may not see is as unknown
/// as one that does not exist (404).
pub(crate) fn visible<'a>(
    app: &'a App,
    principal: &Principal,
    id: &str,
) -> Result<&'a Building, ApiError> {
    app.registry
        .get(id)
        .filter(|b| principal.sees(b))
        .ok_or(ApiError::NotFound("building"))
}

/// Who acts: the signed-in user. An anonymous caller (`auth.anonymous`)
/// names itself in `by`.
pub(crate) fn actor(principal: &Principal, by: Option<&str>) -> Result<String, ApiError> {
    if principal.user_id == 0 {
        Ok(crate::hazards::person(by.unwrap_or(""))?.to_owned())
    } else {
        Ok(principal.actor())
    }
}

/// 403 unless the caller's role may do `what`.
pub(crate) fn allowed(yes: bool, what: &str) -> Result<(), ApiError> {
    if yes {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("your role may not {what}")))
    }
}

/// Whether `principal` sees gateway `id`: one serving a building it sees;
/// one in no building (not yet bound) only admins and unscoped installers.
pub(crate) fn sees_gateway(app: &App, principal: &Principal, id: &str) -> bool {
    use crate::auth::Role;
    matches!(
        (principal.role, principal.scope.as_deref()),
        (Role::Admin, _) | (Role::Installer, None)
    ) || app.registry.by_gateway(id).any(|b| principal.sees(b))
}

/// Every building the caller sees, failing first, then warning, unknown
/// and ok.
#[utoipa::path(
    get,
    path = "/api/buildings",
    operation_id = "list_buildings",
    tag = "buildings",
    params(LangQuery),
    responses((status = 200, description = "The buildings with their verdicts.", body = [BuildingSummary])),
)]
async fn list_buildings(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(q): Query<LangQuery>,
) -> Result<Json<Vec<BuildingSummary>>, ApiError> {
    let verdicts = app.store.verdicts().await?;
    let mut out: Vec<_> = app
        .registry
        .buildings()
        .iter()
        .filter(|b| principal.sees(b))
        .map(|b| summary(b, verdicts.get(&b.id), q.lang))
        .collect();
    out.sort_by(|a, b| a.status.cmp(&b.status).then_with(|| a.id.cmp(&b.id)));
    Ok(Json(out))
}

/// One building: its verdict, class and requirements, latest points and
/// the parties who answer for it.
#[utoipa::path(
    get,
    path = "/api/buildings/{id}",
    operation_id = "get_building",
    tag = "buildings",
    params(("id" = String, Path, description = "Building id."), LangQuery),
    responses(
        (status = 200, description = "The building.", body = BuildingDetail),
        (status = 404, description = "Unknown building, or not one the caller sees.", body = ErrorBody),
    ),
)]
async fn get_building(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Json<BuildingDetail>, ApiError> {
    let b = visible(&app, &principal, &id)?;
    let verdict = app.store.verdict(&b.id).await?;
    let points = app
        .store
        .latest(&b.gateway)
        .await?
        .into_iter()
        .map(|l| PointOut {
            point: l.point,
            value: l.value.value,
            unit: l.unit,
            quality: l.value.quality,
            exception: l.exception,
            ts: l.value.ts,
            clock: l.clock,
            gateway_ts: l.gateway_ts,
        })
        .collect();
    let class = b.class();
    Ok(Json(BuildingDetail {
        summary: summary(b, verdict.as_ref(), q.lang),
        height_m: b.height_m,
        storeys: b.storeys,
        class,
        class_name: class.name_zh().into(),
        gateway: b.gateway.clone(),
        requirements: Requirements {
            tank_volume_m3: rules::required_tank_volume_m3(class, b.height_m),
            static_pressure_mpa: rules::required_static_pressure_mpa(
                class,
                b.height_m,
                b.jockey_pump,
            ),
        },
        points,
        parties: parties_out(&app, b),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
    database: bool,
    mqtt_connected: bool,
}

/// Liveness and readiness: whether the database answers and MQTT is connected.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The database answers.", body = Health),
        (status = 503, description = "The database does not answer (`status`: `degraded`).", body = Health),
    ),
)]
async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let database = app.store.ping().await.is_ok();
    let mqtt_connected = app.metrics.mqtt_connected();
    let code = if database {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if database { "ok" } else { "degraded" };
    (
        code,
        Json(Health {
            status,
            database,
            mqtt_connected,
        }),
    )
}

/// Prometheus metrics: ingest counters, verdicts by status, sequence gaps.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Prometheus text exposition.", content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "The database failed.", body = ErrorBody),
    ),
)]
async fn metrics(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    let verdicts = app.store.verdicts().await?;
    let sequences = app.store.sequences(None).await?;
    let statuses: Vec<(&str, usize)> = [
        Status::Failing,
        Status::Warning,
        Status::Unknown,
        Status::Ok,
    ]
    .into_iter()
    .map(|s| {
        let stored = verdicts.values().filter(|v| v.status == s).count();
        (s.as_str(), stored)
    })
    .collect();
    let mut text = app.metrics.render(&statuses, &sequences);
    if let Some(sink) = &app.influx {
        sink.stats().render(&mut text);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

#[cfg(test)]
mod tests;
