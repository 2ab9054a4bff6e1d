//! Maintenance mode (维保模式) per building, set by the contractor while
//! they work on the system: the building is still judged and its verdict
//! shown with a `maintenance` reason and its end, but nobody is paged and
//! no hazard item opens.
//!
//! - `GET /api/buildings/{id}/maintenance`: its windows, newest first.
//! - `POST /api/buildings/{id}/maintenance` `{"by", "until", "starts"?, "note"?}`:
//!   a window from `starts` (default now) to `until` (RFC 3339), at most
//!   [`MAX_WINDOW`] long. 201 with the window; the building is re-judged at
//!   once.
//! - `POST /api/buildings/{id}/maintenance/end` `{"by"}`: ends every window
//!   in force or to come; re-judged at once.
//!
//! `by` names who did it (authentication arrives with the dashboard's
//! roles; until then the caller names itself).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::ApiError;
use crate::App;
use crate::auth::Principal;
use crate::store::Maintenance;

/// Longest maintenance window: a building does not stay unpaged for longer
/// without someone setting it again.
pub const MAX_WINDOW: Duration = Duration::days(7);

/// Longest `note`, in characters (`by` is checked as for hazard actions).
const MAX_NOTE: usize = 1000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMaintenance {
    /// Names an anonymous caller; a signed-in user acts as itself.
    #[serde(default)]
    pub by: Option<String>,
    /// End of the window (RFC 3339): after `starts`, in the future, at
    /// most 7 days after `starts`.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Start of the window (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub starts: Option<OffsetDateTime>,
    /// At most 1000 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndMaintenance {
    #[serde(default)]
    pub by: Option<String>,
}

/// What ending maintenance did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ended {
    /// Windows in force or to come that were ended.
    pub ended: u64,
}

/// A building's maintenance windows, newest first (at most 100).
#[utoipa::path(
    get,
    path = "/api/buildings/{id}/maintenance",
    operation_id = "list_maintenance",
    tag = "maintenance",
    params(("id" = String, Path, description = "Building id.")),
    responses(
        (status = 200, description = "Its windows, newest first.", body = [Maintenance]),
        (status = 404, description = "Unknown building, or not one the caller sees.", body = super::ErrorBody),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Maintenance>>, ApiError> {
    super::visible(&app, &principal, &id)?;
    Ok(Json(app.store.maintenance(&id, 100).await?))
}

/// Sets a maintenance window (维保模式); the building is re-judged at once.
#[utoipa::path(
    post,
    path = "/api/buildings/{id}/maintenance",
    operation_id = "set_maintenance",
    tag = "maintenance",
    params(("id" = String, Path, description = "Building id.")),
    request_body = SetMaintenance,
    responses(
        (status = 201, description = "The window.", body = Maintenance),
        (status = 400, description = "Malformed body, `until` not after `starts` or in the past, longer than 7 days, or `note` too long.", body = super::ErrorBody),
        (status = 403, description = "The caller's role may not set maintenance mode.", body = super::ErrorBody),
        (status = 404, description = "Unknown building, or not one the caller sees.", body = super::ErrorBody),
    ),
)]
pub async fn set(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Json<SetMaintenance>, JsonRejection>,
) -> Result<(StatusCode, Json<Maintenance>), ApiError> {
    let building = super::visible(&app, &principal, &id)?;
    super::allowed(principal.can().maintenance, "set maintenance mode")?;
    let body = super::json_body(body)?;
    let by = &super::actor(&principal, body.by.as_deref())?;
    if body.note.chars().count() > MAX_NOTE {
        return Err(ApiError::BadRequest(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    let now = OffsetDateTime::now_utc();
    let starts = body.starts.unwrap_or(now);
    if body.until <= starts.max(now) {
        return Err(ApiError::BadRequest(
            "`until` must lie after `starts` and in the future".into(),
        ));
    }
    if body.until - starts > MAX_WINDOW {
        return Err(ApiError::BadRequest(format!(
            "a maintenance window lasts at most {} days",
            MAX_WINDOW.whole_days()
        )));
    }
    let window = app
        .store
        .add_maintenance(&id, starts, body.until, by, &body.note, now)
        .await?;
    tracing::info!(building_id = %id, by = %window.by, until = %window.until, "maintenance mode set");
    crate::judge(&app, Some(&[building.gateway.as_str()]), now).await?;
    Ok((StatusCode::CREATED, Json(window)))
}

/// Ends every window in force or to come; the building is re-judged at once.
#[utoipa::path(
    post,
    path = "/api/buildings/{id}/maintenance/end",
    operation_id = "end_maintenance",
    tag = "maintenance",
    params(("id" = String, Path, description = "Building id.")),
    request_body = EndMaintenance,
    responses(
        (status = 200, description = "How many windows ended.", body = Ended),
        (status = 400, description = "Malformed body.", body = super::ErrorBody),
        (status = 403, description = "The caller's role may not end maintenance mode.", body = super::ErrorBody),
        (status = 404, description = "Unknown building, or not one the caller sees.", body = super::ErrorBody),
    ),
)]
pub async fn end(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Json<EndMaintenance>, JsonRejection>,
) -> Result<Json<Ended>, ApiError> {
    let building = super::visible(&app, &principal, &id)?;
    super::allowed(principal.can().maintenance, "end maintenance mode")?;
    let body = super::json_body(body)?;
    let by = &super::actor(&principal, body.by.as_deref())?;
    let now = OffsetDateTime::now_utc();
    let ended = app.store.end_maintenance(&id, by, now).await?;
    tracing::info!(building_id = %id, by = %by, ended, "maintenance mode ended");
    crate::judge(&app, Some(&[building.gateway.as_str()]), now).await?;
    Ok(Json(Ended { ended }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use riser_contract::{Message, Quality, Reading, Telemetry};
    use serde_json::json;
    use tower::ServiceExt;

    async fn call(
        app: &Arc<App>,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = super::super::router(app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// B2's tank far too low: failing.
    async fn empty_tank(app: &Arc<App>) {
        let now = OffsetDateTime::now_utc();
        let reading = |point: &str, value| Reading {
            point: point.into(),
            ts: now,
            value: Some(value),
            unit: None,
            quality: Quality::Good,
            exception: None,
            clock: None,
        };
        let m = Message::Telemetry(Telemetry::new(
            "gw-B2",
            1,
            vec![reading("tank.level", 0.5), reading("riser.pressure", 0.3)],
        ));
        app.store.ingest(&m, now).await.unwrap();
        crate::judge(app, Some(&["gw-B2"]), now).await.unwrap();
    }

    fn rfc3339(t: OffsetDateTime) -> String {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    #[tokio::test]
    async fn maintenance_mode_is_shown_on_the_verdict_pages_no_one_and_can_end_early() {
        let (_dir, app) = crate::test_app().await;
        empty_tank(&app).await;
        let until = OffsetDateTime::now_utc() + Duration::hours(2);
        let body = json!({ "by": "张工（维保）", "until": rfc3339(until), "note": "更换液位计" });
        let (status, window) = call(
            &app,
            "POST",
            "/api/buildings/B2/maintenance",
            &body.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{window}");
        assert_eq!(window["by"], "张工（维保）");

        let verdict = &app.store.verdicts().await.unwrap()["B2"];
        assert_eq!(
            verdict.status,
            crate::rules::Status::Failing,
            "still judged"
        );
        let shown = crate::rules::Verdict {
            status: verdict.status,
            reasons: verdict.reasons.clone(),
        };
        assert!(shown.maintenance_until().is_some(), "{:?}", shown.reasons);
        assert!(shown.pageable().is_empty(), "nobody is paged");

        let (status, _) = call(
            &app,
            "POST",
            "/api/buildings/B2/maintenance/end",
            r#"{"by":"李工"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let verdict = &app.store.verdicts().await.unwrap()["B2"];
        assert!(
            verdict
                .reasons
                .iter()
                .all(|r| r.code != crate::rules::Code::Maintenance)
        );
        let (status, list) = call(&app, "GET", "/api/buildings/B2/maintenance", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list[0]["ended_by"], "李工");
    }

    #[tokio::test]
    async fn a_bad_maintenance_request_is_refused_with_a_reason() {
        let (_dir, app) = crate::test_app().await;
        let now = OffsetDateTime::now_utc();
        let cases = [
            ("{not json".to_owned(), StatusCode::BAD_REQUEST),
            (
                json!({ "by": " ", "until": rfc3339(now + Duration::hours(1)) }).to_string(),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({ "by": "张工", "until": rfc3339(now - Duration::hours(1)) }).to_string(),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({ "by": "张工", "until": rfc3339(now + Duration::days(30)) }).to_string(),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({ "by": "张工", "until": "tomorrow" }).to_string(),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (body, expected) in cases {
            let (status, reply) = call(&app, "POST", "/api/buildings/B2/maintenance", &body).await;
            assert_eq!(status, expected, "{body}");
            assert!(reply["error"].is_string(), "{body}: {reply}");
        }
        let ok = json!({ "by": "张工", "until": rfc3339(now + Duration::hours(1)) }).to_string();
        let (status, _) = call(&app, "POST", "/api/buildings/B9/maintenance", &ok).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(app.store.maintenance("B2", 10).await.unwrap().is_empty());
    }
}
