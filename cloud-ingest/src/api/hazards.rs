//! The hazard list (隐患清单) and a person's actions on an item (see
//! [`crate::hazards`] for the lifecycle).
//!
//! - `GET /api/hazards?state=&building=&severity=&overdue=&lang=&limit=&offset=`:
//!   `{"total", "items"}`, newest first. `state` takes one state or several
//!   separated by commas (`open,acknowledged`); `overdue=true` only items
//!   past their deadline and not resolved, `false` the others; `limit`
//!   1-1000 (default 100).
//! - `GET /api/hazards/{id}?lang=`: the item with its transitions and the
//!   messages sent about it.
//! - `POST /api/hazards/{id}/acknowledge` `{"by"}`: an `open` item.
//! - `POST /api/hazards/{id}/remarks` `{"by", "text"}`: in any state.
//! - `POST /api/hazards/{id}/close` `{"by", "remark"}`: close (销号) a
//!   `resolved` item.
//!
//! Each action answers with the item and its transitions. Bad input is a
//! 400, an unknown item a 404, an action the item's state does not allow a
//! 409, each with `{"error": "…"}`.
//!
//! The signed-in user acts (see [`super::auth`]); `by` in a body only names
//! an anonymous caller (`auth.anonymous`). A contractor acknowledges,
//! remarks and closes the items of its own buildings; fire-rescue staff
//! remark; an item of a building the caller may not see is a 404.
//! Remarks are stored and served as written (text, never markup: the
//! dashboard must escape them).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ApiError;
use crate::App;
use crate::auth::{Principal, Role};
use crate::hazards::{
    self, Action, Filter, Hazard, HazardError, Severity, State as ItemState, Transition,
};
use crate::rules::{self, Code, Lang};

/// Most items in one page.
pub const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

impl From<HazardError> for ApiError {
    fn from(error: HazardError) -> Self {
        match error {
            HazardError::NotFound(_) => ApiError::NotFound("hazard"),
            HazardError::WrongState(message) => ApiError::Conflict(message),
            HazardError::Invalid(message) => ApiError::BadRequest(message),
            HazardError::Store(error) => ApiError::Store(error),
        }
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|r| ApiError::BadRequest(r.body_text()))
}

/// An id that is not a number names no item.
fn item_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("hazard"))
}

/// An item as served.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HazardOut {
    pub id: i64,
    pub building_id: String,
    /// From the registry; absent for a building no longer in it.
    pub building_name: Option<String>,
    pub district: Option<String>,
    pub town: Option<String>,
    pub code: Code,
    pub point: Option<String>,
    pub severity: Severity,
    pub state: ItemState,
    /// What the condition is and what to do, in the asked language.
    pub message: String,
    pub clause: Option<String>,
    /// As last seen by the rules.
    pub value: Option<f64>,
    pub required: Option<f64>,
    /// When the condition began.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// When the rules recorded the item.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Still `open` after this, it escalates.
    #[serde(with = "time::serde::rfc3339")]
    pub ack_due: OffsetDateTime,
    /// Rectification deadline (限期整改).
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// Past its deadline and not resolved.
    pub overdue: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    pub closed_by: Option<String>,
    pub closed_remark: Option<String>,
    /// 挂牌督办: 0 none, 1 unacknowledged in time, 2 overdue.
    pub escalation: u8,
    #[serde(with = "time::serde::rfc3339::option")]
    pub escalated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// How often the condition came back after clearing.
    pub reopened: u32,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransitionOut {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub action: Action,
    /// A person, or `system` (the rules and the escalation timer).
    pub by: String,
    /// The remark, the closing remark, or why it escalated.
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HazardDetail {
    #[serde(flatten)]
    pub hazard: HazardOut,
    /// Oldest first.
    pub transitions: Vec<TransitionOut>,
    /// The messages sent about it, oldest first.
    pub notifications: Vec<super::notifications::NotificationOut>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HazardList {
    /// Items matching the filters, over all pages.
    pub total: i64,
    pub items: Vec<HazardOut>,
}

fn out(app: &App, h: Hazard, lang: Lang, now: OffsetDateTime) -> HazardOut {
    let building = app.registry.get(&h.building_id);
    HazardOut {
        message: rules::render(&h.reason(), lang),
        overdue: h.overdue(now),
        building_name: building.map(|b| b.name.clone()),
        district: building.map(|b| b.district.clone()),
        town: building.map(|b| b.town.clone()),
        id: h.id,
        building_id: h.building_id,
        code: h.code,
        point: h.point,
        severity: h.severity,
        state: h.state,
        clause: h.clause,
        value: h.value,
        required: h.required,
        opened_at: h.opened_at,
        recorded_at: h.recorded_at,
        ack_due: h.ack_due,
        deadline: h.deadline,
        acknowledged_at: h.acknowledged_at,
        acknowledged_by: h.acknowledged_by,
        resolved_at: h.resolved_at,
        closed_at: h.closed_at,
        closed_by: h.closed_by,
        closed_remark: h.closed_remark,
        escalation: h.escalation,
        escalated_at: h.escalated_at,
        last_seen_at: h.last_seen_at,
        reopened: h.reopened,
    }
}

async fn detail(app: &App, h: Hazard, lang: Lang) -> Result<Json<HazardDetail>, ApiError> {
    let transitions = hazards::transitions(&app.store, h.id)
        .await?
        .into_iter()
        .map(|t: Transition| TransitionOut {
            at: t.at,
            action: t.action,
            by: t.by,
            note: t.note,
        })
        .collect();
    let notifications = super::notifications::of_hazard(app, h.id).await?;
    Ok(Json(HazardDetail {
        hazard: out(app, h, lang, OffsetDateTime::now_utc()),
        transitions,
        notifications,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One state (`open`, `acknowledged`, `resolved`, `closed`), or several
    /// separated by commas.
    #[param(example = "open,acknowledged")]
    state: Option<String>,
    /// Only this building's items (its id).
    building: Option<String>,
    #[param(value_type = Option<Severity>)]
    severity: Option<String>,
    /// `true`: only items past their deadline and not resolved; `false`:
    /// the others.
    overdue: Option<bool>,
    /// Language of `message`: `zh` (default) or `en`.
    #[serde(default)]
    lang: Lang,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip; default 0.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LangOnly {
    /// Language of messages: `zh` (default) or `en`.
    #[serde(default)]
    lang: Lang,
}

fn filter(q: ListQuery) -> Result<Filter, ApiError> {
    let mut states = Vec::new();
    for s in q.state.iter().flat_map(|s| s.split(',')).map(str::trim) {
        let state = ItemState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown state `{s}`: expected open, acknowledged, resolved or closed"
            ))
        })?;
        if !states.contains(&state) {
            states.push(state);
        }
    }
    let severity = q
        .severity
        .map(|s| {
            Severity::parse(&s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown severity `{s}`: expected urgent, general or monitoring"
                ))
            })
        })
        .transpose()?;
    let (limit, offset) = super::page(q.limit, q.offset, DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(Filter {
        states,
        building: q.building,
        within: None,
        severity,
        overdue: q.overdue,
        limit,
        offset,
    })
}

/// The hazard list (隐患清单) of the buildings the caller sees, newest first.
#[utoipa::path(
    get,
    path = "/api/hazards",
    operation_id = "list_hazards",
    tag = "hazards",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of items and the total matching.", body = HazardList),
        (status = 400, description = "An unknown parameter, state or severity, or `limit`/`offset` out of range.", body = super::ErrorBody),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<HazardList>, ApiError> {
    let q = query(q)?;
    let lang = q.lang;
    let filter = Filter {
        within: super::within(&app, &principal),
        ..filter(q)?
    };
    let now = OffsetDateTime::now_utc();
    let (items, total) = hazards::list(&app.store, &filter, now).await?;
    Ok(Json(HazardList {
        total,
        items: items.into_iter().map(|h| out(&app, h, lang, now)).collect(),
    }))
}

/// One item with its transitions and the messages sent about it.
#[utoipa::path(
    get,
    path = "/api/hazards/{id}",
    operation_id = "get_hazard",
    tag = "hazards",
    params(("id" = i64, Path, description = "Item id."), LangOnly),
    responses(
        (status = 200, description = "The item.", body = HazardDetail),
        (status = 400, description = "An unknown parameter.", body = super::ErrorBody),
        (status = 404, description = "Unknown item, or of a building the caller does not see.", body = super::ErrorBody),
    ),
)]
pub async fn get(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    q: Result<Query<LangOnly>, QueryRejection>,
) -> Result<Json<HazardDetail>, ApiError> {
    let lang = query(q)?.lang;
    let h = item(&app, &principal, &id).await?;
    detail(&app, h, lang).await
}

/// Item `id` if its building is one `principal` sees (404 otherwise).
async fn item(app: &App, principal: &Principal, id: &str) -> Result<Hazard, ApiError> {
    let h = hazards::get(&app.store, item_id(id)?)
        .await?
        .ok_or(ApiError::NotFound("hazard"))?;
    match app.registry.get(&h.building_id) {
        Some(b) if principal.sees(b) => Ok(h),
        // Items of buildings no longer registered: admins only.
        None if principal.role == Role::Admin => Ok(h),
        _ => Err(ApiError::NotFound("hazard")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {
    /// Ignored when signed in: the user acts.
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Remark {
    /// Ignored when signed in: the user acts.
    #[serde(default)]
    pub by: Option<String>,
    /// The remark, stored and served as written (plain text).
    pub text: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// Ignored when signed in: the user acts.
    #[serde(default)]
    pub by: Option<String>,
    /// What was done to rectify it.
    pub remark: String,
}

/// Acknowledges an `open` item: someone has taken it on; its escalation stops.
#[utoipa::path(
    post,
    path = "/api/hazards/{id}/acknowledge",
    operation_id = "acknowledge_hazard",
    tag = "hazards",
    params(("id" = i64, Path, description = "Item id."), LangOnly),
    request_body = Acknowledge,
    responses(
        (status = 200, description = "The item and its transitions.", body = HazardDetail),
        (status = 400, description = "Malformed body or an unknown parameter; an anonymous caller without `by`.", body = super::ErrorBody),
        (status = 403, description = "The caller's role may not acknowledge items.", body = super::ErrorBody),
        (status = 404, description = "Unknown item, or of a building the caller does not see.", body = super::ErrorBody),
        (status = 409, description = "The item is not `open`.", body = super::ErrorBody),
    ),
)]
pub async fn acknowledge(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    q: Result<Query<LangOnly>, QueryRejection>,
    b: Result<Json<Acknowledge>, JsonRejection>,
) -> Result<Json<HazardDetail>, ApiError> {
    let (lang, b) = (query(q)?.lang, super::json_body(b)?);
    let id = item(&app, &principal, &id).await?.id;
    super::allowed(principal.can().acknowledge, "acknowledge items")?;
    let by = super::actor(&principal, b.by.as_deref())?;
    let h = hazards::acknowledge(&app.store, id, &by, OffsetDateTime::now_utc()).await?;
    detail(&app, h, lang).await
}

/// Adds a remark to an item in any state.
#[utoipa::path(
    post,
    path = "/api/hazards/{id}/remarks",
    operation_id = "remark_hazard",
    tag = "hazards",
    params(("id" = i64, Path, description = "Item id."), LangOnly),
    request_body = Remark,
    responses(
        (status = 200, description = "The item and its transitions.", body = HazardDetail),
        (status = 400, description = "Malformed body, an empty or too long text, or an unknown parameter.", body = super::ErrorBody),
        (status = 403, description = "The caller's role may not add remarks.", body = super::ErrorBody),
        (status = 404, description = "Unknown item, or of a building the caller does not see.", body = super::ErrorBody),
    ),
)]
pub async fn remark(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    q: Result<Query<LangOnly>, QueryRejection>,
    b: Result<Json<Remark>, JsonRejection>,
) -> Result<Json<HazardDetail>, ApiError> {
    let (lang, b) = (query(q)?.lang, super::json_body(b)?);
    let id = item(&app, &principal, &id).await?.id;
    super::allowed(principal.can().remark, "add remarks")?;
    let by = super::actor(&principal, b.by.as_deref())?;
    let h = hazards::remark(&app.store, id, &by, &b.text, OffsetDateTime::now_utc()).await?;
    detail(&app, h, lang).await
}

/// Closes (销号) a `resolved` item.
#[utoipa::path(
    post,
    path = "/api/hazards/{id}/close",
    operation_id = "close_hazard",
    tag = "hazards",
    params(("id" = i64, Path, description = "Item id."), LangOnly),
    request_body = Close,
    responses(
        (status = 200, description = "The item and its transitions.", body = HazardDetail),
        (status = 400, description = "Malformed body, an empty or too long remark, or an unknown parameter.", body = super::ErrorBody),
        (status = 403, description = "The caller's role may not close items.", body = super::ErrorBody),
        (status = 404, description = "Unknown item, or of a building the caller does not see.", body = super::ErrorBody),
        (status = 409, description = "The item is not `resolved`.", body = super::ErrorBody),
    ),
)]
pub async fn close(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    q: Result<Query<LangOnly>, QueryRejection>,
    b: Result<Json<Close>, JsonRejection>,
) -> Result<Json<HazardDetail>, ApiError> {
    let (lang, b) = (query(q)?.lang, super::json_body(b)?);
    let id = item(&app, &principal, &id).await?.id;
    super::allowed(principal.can().close, "close items")?;
    let by = super::actor(&principal, b.by.as_deref())?;
    let h = hazards::close(&app.store, id, &by, &b.remark, OffsetDateTime::now_utc()).await?;
    detail(&app, h, lang).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use riser_contract::{Message, Quality, Reading, Telemetry};
    use serde_json::{Value, json};
    use time::Duration;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &Arc<App>, request: Request<Body>) -> (StatusCode, Value) {
        let res = crate::api::router(app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, body)
    }

    async fn get_json(app: &Arc<App>, uri: &str) -> (StatusCode, Value) {
        call(app, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn post_raw(app: &Arc<App>, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        call(app, request).await
    }

    async fn post(app: &Arc<App>, uri: &str, body: Value) -> (StatusCode, Value) {
        post_raw(app, uri, &body.to_string()).await
    }

    /// B2's tank at `level` m and a good pressure, read and judged at `at`.
    async fn report(app: &Arc<App>, seq: u64, at: OffsetDateTime, level: f64) {
        let reading = |point: &str, value| Reading {
            point: String::from(point),
            ts: at,
            value: Some(value),
            unit: None,
            quality: Quality::Good,
            exception: None,
            clock: None,
        };
        let m = Message::Telemetry(Telemetry::new(
            "gw-B2",
            seq,
            vec![reading("tank.level", level), reading("riser.pressure", 0.3)],
        ));
        app.store.ingest(&m, at).await.unwrap();
        crate::judge(app, Some(&["gw-B2"]), at).await.unwrap();
    }

    fn ids(list: &Value) -> Vec<i64> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_i64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_list_is_newest_first_and_filters_by_state_building_severity_and_overdue() {
        let (_dir, app) = crate::test_app().await;
        let now = OffsetDateTime::now_utc();
        // A month ago B1's gateway came up without its two points
        // (monitoring, long overdue); now B2's tank is low (urgent, due
        // tomorrow).
        crate::heard_from(&app, "gw-B1", now - Duration::days(30)).await;
        crate::judge(&app, Some(&["gw-B1"]), now - Duration::days(30))
            .await
            .unwrap();
        report(&app, 1, now, 1.0).await;

        let (status, all) = get_json(&app, "/api/hazards").await;
        assert_eq!(status, StatusCode::OK, "{all}");
        assert_eq!(all["total"], 3, "{all:#}");
        let codes: Vec<&str> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            ["tank_volume_low", "no_data", "no_data"],
            "newest first"
        );

        let (_, urgent) = get_json(&app, "/api/hazards?severity=urgent").await;
        assert_eq!(urgent["total"], 1);
        let tank = &urgent["items"][0];
        assert_eq!(tank["code"], "tank_volume_low");
        assert_eq!(tank["point"], "tank.level");
        assert_eq!(tank["building_name"], "二号楼");
        assert_eq!(tank["district"], "梁平区");
        assert_eq!(tank["state"], "open");
        assert_eq!(tank["value"], 6.4);
        assert_eq!(tank["required"], 12.0);
        assert_eq!(tank["overdue"], false);
        assert_eq!(tank["escalation"], 0);
        assert!(
            tank["message"].as_str().unwrap().contains("高位消防水箱"),
            "{tank}"
        );
        let (_, en) = get_json(&app, "/api/hazards?severity=urgent&lang=en").await;
        assert!(
            en["items"][0]["message"]
                .as_str()
                .unwrap()
                .contains("rooftop fire tank")
        );

        let (_, b1) = get_json(&app, "/api/hazards?building=B1&severity=monitoring").await;
        assert_eq!(b1["total"], 2);
        for item in b1["items"].as_array().unwrap() {
            assert_eq!(item["code"], "no_data");
            assert_eq!(item["building_name"], "<script>alert(1)</script>");
            assert_eq!(item["overdue"], true, "72 h are long past");
        }

        let (_, overdue) = get_json(&app, "/api/hazards?overdue=true").await;
        assert_eq!(ids(&overdue), ids(&b1));
        let (_, on_time) = get_json(&app, "/api/hazards?overdue=false").await;
        assert_eq!(ids(&on_time), ids(&urgent));

        let (_, open) = get_json(&app, "/api/hazards?state=open,acknowledged").await;
        assert_eq!(open["total"], 3);
        let (_, none) = get_json(&app, "/api/hazards?state=closed").await;
        assert_eq!(none["total"], 0);

        let (_, page) = get_json(&app, "/api/hazards?limit=2&offset=1").await;
        assert_eq!(page["total"], 3, "the total over all pages");
        assert_eq!(ids(&page), ids(&all)[1..3]);
    }

    #[tokio::test]
    async fn an_item_is_acknowledged_remarked_and_closed_through_the_api() {
        let (_dir, app) = crate::test_app().await;
        let now = OffsetDateTime::now_utc();
        report(&app, 1, now, 1.0).await;
        let (_, list) = get_json(&app, "/api/hazards?building=B2").await;
        let id = ids(&list)[0];
        let uri = |action: &str| format!("/api/hazards/{id}/{action}");

        let (status, item) = post(&app, &uri("acknowledge"), json!({"by": "张工"})).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["state"], "acknowledged");
        assert_eq!(item["acknowledged_by"], "张工");

        let (status, body) = post(&app, &uri("acknowledge"), json!({"by": "王工"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["error"],
            format!("hazard {id} is already acknowledged")
        );

        let (status, body) = post(
            &app,
            &uri("close"),
            json!({"by": "李工", "remark": "已补水"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("the condition is still present"),
            "{body}"
        );

        let markup = "<script>alert('x')</script>已联系物业";
        let (status, item) =
            post(&app, &uri("remarks"), json!({"by": "张工", "text": markup})).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["transitions"][2]["action"], "remark");
        assert_eq!(item["transitions"][2]["note"], markup, "stored as text");

        report(&app, 2, now, 2.3).await;
        let (status, item) = post(
            &app,
            &uri("close"),
            json!({"by": "李工", "remark": "补水阀已更换"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["state"], "closed");
        assert_eq!(item["closed_by"], "李工");
        assert_eq!(item["closed_remark"], "补水阀已更换");

        let (status, item) = get_json(&app, &format!("/api/hazards/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let steps: Vec<(&str, &str)> = item["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["action"].as_str().unwrap(), t["by"].as_str().unwrap()))
            .collect();
        assert_eq!(
            steps,
            [
                ("opened", "system"),
                ("acknowledged", "张工"),
                ("remark", "张工"),
                ("resolved", "system"),
                ("closed", "李工"),
            ]
        );
        assert!(item["transitions"][0]["at"].is_string());

        let (status, body) = post(
            &app,
            &uri("close"),
            json!({"by": "李工", "remark": "again"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], format!("hazard {id} is already closed"));
    }

    #[tokio::test]
    async fn bad_input_is_a_json_400_and_an_unknown_item_a_json_404() {
        let (_dir, app) = crate::test_app().await;
        report(&app, 1, OffsetDateTime::now_utc(), 1.0).await;
        let (_, list) = get_json(&app, "/api/hazards").await;
        let ack = format!("/api/hazards/{}/acknowledge", ids(&list)[0]);
        let remarks = format!("/api/hazards/{}/remarks", ids(&list)[0]);

        for (uri, body) in [
            (ack.as_str(), "{\"by\": "),
            (ack.as_str(), "{}"),
            (ack.as_str(), "{\"by\": 7}"),
            (ack.as_str(), "{\"by\": \"张工\", \"role\": \"admin\"}"),
            (ack.as_str(), "{\"by\": \"  \"}"),
            (remarks.as_str(), "{\"by\": \"张工\", \"text\": \"\"}"),
            (remarks.as_str(), "{\"by\": \"张工\"}"),
        ] {
            let (status, error) = post_raw(&app, uri, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {error}");
            assert!(error["error"].is_string(), "{error}");
        }
        let long = "工".repeat(101);
        let (status, error) = post(&app, &ack, json!({ "by": long })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"], "`by` must be at most 100 characters");

        let no_type = Request::post(&ack)
            .body(Body::from("{\"by\": \"张工\"}"))
            .unwrap();
        let (status, error) = call(&app, no_type).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error["error"].is_string());

        for uri in [
            "/api/hazards?state=pending",
            "/api/hazards?severity=high",
            "/api/hazards?overdue=maybe",
            "/api/hazards?limit=0",
            "/api/hazards?limit=abc",
            "/api/hazards?offset=-1",
            "/api/hazards?lang=fr",
            "/api/hazards?sate=open",
        ] {
            let (status, error) = get_json(&app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {error}");
            assert!(error["error"].is_string(), "{uri}: {error}");
        }

        for uri in ["/api/hazards/999", "/api/hazards/abc"] {
            let (status, error) = get_json(&app, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(error["error"], "hazard not found");
        }
        for (action, body) in [
            ("acknowledge", json!({"by": "张工"})),
            ("remarks", json!({"by": "张工", "text": "x"})),
            ("close", json!({"by": "张工", "remark": "x"})),
        ] {
            let (status, error) = post(&app, &format!("/api/hazards/999/{action}"), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {error}");
            assert_eq!(error["error"], "hazard not found");
        }
    }
}
