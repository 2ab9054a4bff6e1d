//! `GET /api/buildings/{id}/points/{point}/history?from=&to=&resolution=`:
//! one point's history for a chart, read from the building's gateway.
//!
//! - `from`, `to`: RFC 3339 (`+08:00` may arrive as a space, as a browser
//!   sends an unencoded `+`); default: the 24 hours up to now. `from` is
//!   inclusive, `to` exclusive.
//! - `resolution`: `raw` (every reading: `{ts, value, quality}`), `minute`
//!   or `hour` (`{ts, min, max, avg, n, bad}`: min/max/avg of the `n`
//!   readings with a good value, `bad` readings without one). Default: raw
//!   up to a day, minutes up to a week, hours beyond; minutes where the
//!   raw readings were already pruned. Raw and minute ranges are at most
//!   [`MAX_FINE_SPAN`].
//!
//! A bad parameter is a 400 with `{"error": …}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use riser_contract::Quality;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::ApiError;
use crate::App;
use crate::store::{Bucket, RawReading, Resolution, Series};

/// Longest range of raw readings or minutes in one answer (about 45 000
/// minutes, or a month of readings every few seconds).
pub const MAX_FINE_SPAN: Duration = Duration::days(31);

/// Range shown when none is asked.
const DEFAULT_SPAN: Duration = Duration::days(1);

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Start, inclusive (RFC 3339); default 24 hours before `to`.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// End, exclusive (RFC 3339); default now.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Default: raw up to a day, minutes up to a week, hours beyond (and
    /// minutes where raw readings were pruned). Raw and minute ranges span
    /// at most 31 days.
    #[param(value_type = Option<Resolution>)]
    pub resolution: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryOut {
    pub building: String,
    pub gateway: String,
    pub point: String,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub resolution: Resolution,
    pub points: Points,
}

/// Readings (`raw`) or buckets (`minute`, `hour`), oldest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Points {
    Raw(Vec<RawOut>),
    Buckets(Vec<BucketOut>),
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RawOut {
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    pub value: Option<f64>,
    #[schema(value_type = super::openapi::QualityDoc)]
    pub quality: Quality,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BucketOut {
    /// Start of the minute or hour.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    /// Readings with a good value.
    pub n: u64,
    /// Readings without a value or of another quality than good.
    pub bad: u64,
}

/// The range and resolution asked, at `now`.
pub fn parse(
    q: &HistoryQuery,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime, Option<Resolution>), String> {
    let time = |key: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| {
                OffsetDateTime::parse(&v.replace(' ', "+"), &Rfc3339)
                    .map_err(|_| format!("`{key}` must be an RFC 3339 time, not `{v}`"))
            })
            .transpose()
    };
    let to = time("to", &q.to)?.unwrap_or(now);
    let from = time("from", &q.from)?.unwrap_or(to - DEFAULT_SPAN);
    if from >= to {
        return Err("`from` must be before `to`".into());
    }
    let resolution = q
        .resolution
        .as_deref()
        .map(|r| {
            Resolution::parse(r)
                .ok_or_else(|| format!("`resolution` must be raw, minute or hour, not `{r}`"))
        })
        .transpose()?;
    if matches!(resolution, Some(Resolution::Raw | Resolution::Minute)) && to - from > MAX_FINE_SPAN
    {
        return Err(format!(
            "a raw or minute history spans at most {} days; ask for resolution=hour",
            MAX_FINE_SPAN.whole_days()
        ));
    }
    Ok((from, to, resolution))
}

/// One point's history for a chart, read from the building's gateway.
#[utoipa::path(
    get,
    path = "/api/buildings/{id}/points/{point}/history",
    operation_id = "point_history",
    tag = "history",
    params(
        ("id" = String, Path, description = "Building id."),
        ("point" = String, Path, description = "Point name, e.g. `tank.level`."),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The series.", body = HistoryOut),
        (status = 400, description = "A malformed time, `from` not before `to`, an unknown resolution, or a raw or minute range over 31 days.", body = super::ErrorBody),
        (status = 404, description = "Unknown building, or not one the caller sees.", body = super::ErrorBody),
    ),
)]
pub async fn get(
    State(app): State<Arc<App>>,
    principal: crate::auth::Principal,
    Path((id, point)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryOut>, ApiError> {
    let building = super::visible(&app, &principal, &id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (from, to, resolution) =
        parse(&query, OffsetDateTime::now_utc()).map_err(ApiError::BadRequest)?;
    let series = app
        .store
        .series(&building.gateway, &point, from, to, resolution)
        .await?;
    let resolution = series.resolution();
    let points = match series {
        Series::Raw(readings) => Points::Raw(readings.into_iter().map(raw_out).collect()),
        Series::Minute(buckets) | Series::Hour(buckets) => {
            Points::Buckets(buckets.into_iter().map(bucket_out).collect())
        }
    };
    Ok(Json(HistoryOut {
        building: building.id.clone(),
        gateway: building.gateway.clone(),
        point,
        from,
        to,
        resolution,
        points,
    }))
}

fn raw_out(r: RawReading) -> RawOut {
    RawOut {
        ts: r.ts,
        value: r.value,
        quality: r.quality,
    }
}

fn bucket_out(b: Bucket) -> BucketOut {
    BucketOut {
        ts: b.start,
        min: b.min,
        max: b.max,
        avg: b.avg,
        n: b.n,
        bad: b.bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use riser_contract::{Message, Reading, Telemetry};
    use serde_json::json;
    use tower::ServiceExt;

    async fn get_json(app: &Arc<App>, uri: &str) -> (StatusCode, serde_json::Value) {
        let res = super::super::router(app.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
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

    /// `gw-B2` (building B2) reports `tank.level` at `ts`.
    async fn report(app: &Arc<App>, seq: u64, ts: OffsetDateTime, value: f64) {
        let reading = Reading {
            point: "tank.level".into(),
            ts,
            value: Some(value),
            unit: Some("m".into()),
            quality: Quality::Good,
            exception: None,
            clock: None,
        };
        let m = Message::Telemetry(Telemetry::new("gw-B2", seq, vec![reading]));
        app.store.ingest(&m, ts).await.unwrap();
    }

    fn rfc3339(t: OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap()
    }

    #[tokio::test]
    async fn the_last_day_is_raw_and_a_longer_range_is_minutes_or_hours() {
        let (_dir, app) = crate::test_app().await;
        let now = OffsetDateTime::now_utc();
        // Both readings in one minute (from :59 they would straddle two).
        let at = (now - Duration::hours(3))
            .replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap();
        report(&app, 1, at, 2.0).await;
        report(&app, 2, at + Duration::seconds(1), 4.0).await;
        let base = "/api/buildings/B2/points/tank.level/history";

        let (status, body) = get_json(&app, base).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["resolution"], "raw");
        assert_eq!(body["gateway"], "gw-B2");
        assert_eq!(body["points"].as_array().unwrap().len(), 2);
        assert_eq!(body["points"][1]["value"], 4.0);
        assert_eq!(body["points"][1]["quality"], "good");

        let from = rfc3339(now - Duration::days(3));
        let (_, body) = get_json(&app, &format!("{base}?from={from}")).await;
        assert_eq!(body["resolution"], "minute");
        let minute = &body["points"][0];
        assert_eq!(
            (&minute["min"], &minute["max"], &minute["avg"], &minute["n"]),
            (&json!(2.0), &json!(4.0), &json!(3.0), &json!(2)),
            "{body}"
        );

        let from = rfc3339(now - Duration::days(30));
        let (_, body) = get_json(&app, &format!("{base}?from={from}")).await;
        assert_eq!(body["resolution"], "hour");
        assert_eq!(body["points"][0]["n"], 2);

        let (_, body) = get_json(&app, &format!("{base}?resolution=hour")).await;
        assert_eq!(body["resolution"], "hour", "asked for");

        let (_, body) = get_json(&app, "/api/buildings/B1/points/tank.level/history").await;
        assert_eq!(body["points"], json!([]), "B1's gateway never reported");
    }

    #[tokio::test]
    async fn bad_parameters_are_a_json_400() {
        let (_dir, app) = crate::test_app().await;
        let base = "/api/buildings/B2/points/tank.level/history";
        for (query, says) in [
            ("from=yesterday", "`from` must be an RFC 3339 time"),
            ("to=2026-13-01T00:00:00Z", "`to` must be an RFC 3339 time"),
            (
                "from=2026-12-10T00:00:00Z&to=2026-12-09T00:00:00Z",
                "`from` must be before `to`",
            ),
            (
                "resolution=second",
                "`resolution` must be raw, minute or hour",
            ),
            (
                "from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z&resolution=raw",
                "at most 31 days",
            ),
            (
                "from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z&resolution=minute",
                "at most 31 days",
            ),
        ] {
            let (status, body) = get_json(&app, &format!("{base}?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(says), "{query}: {error}");
        }
        let (status, _) = get_json(
            &app,
            &format!("{base}?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z&resolution=hour"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "hours over two months");
        let (status, body) = get_json(&app, "/api/buildings/nope/points/x/history").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "building not found");
    }

    #[test]
    fn an_offset_whose_plus_arrived_as_a_space_is_read() {
        let now = OffsetDateTime::now_utc();
        let q = HistoryQuery {
            from: Some("2026-12-10T08:00:00 08:00".into()),
            to: Some("2026-12-10T09:00:00+08:00".into()),
            resolution: None,
        };
        let (from, to, resolution) = parse(&q, now).unwrap();
        assert_eq!(to - from, Duration::hours(1));
        assert_eq!(from, time::macros::datetime!(2026-12-10 00:00 UTC));
        assert_eq!(resolution, None);
        let (from, to, _) = parse(&HistoryQuery::default(), now).unwrap();
        assert_eq!((to, to - from), (now, Duration::days(1)));
    }
}
