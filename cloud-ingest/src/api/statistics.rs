//! Monthly statistics (统计表, see [`crate::stats`] for what each number
//! counts), over the buildings the caller may see:
//!
//! - `GET /api/statistics?month=2026-11&district=&town=&level=town|community`:
//!   `{"month", "level", "as_of", "rows": [{"district", "town",
//!   "community"?, "in_scope", "monitored", "failing_now", "opened",
//!   "rectified", "found_so_far", "rectified_so_far", "rate", "overdue"}],
//!   "total": {…}}`.
//! - `GET /api/statistics/export.csv?…&lang=zh|en` and
//!   `GET /api/statistics/export.xlsx?…`: the same table as a file
//!   (`Content-Disposition: attachment`, an ASCII file name and a
//!   `filename*` in the asked language); Chinese headers unless `lang=en`.
//!
//! `month` defaults to the current month in China Standard Time; `level`
//! to `town`; empty parameters count as absent. A malformed or future
//! month, or an unknown level or language, is a 400.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::ApiError;
use crate::App;
use crate::auth::Principal;
use crate::rules::Lang;
use crate::stats::{self, Export, Level, Month, Report, Request, StatsError};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/statistics", get(report))
        .route("/api/statistics/export.csv", get(export_csv))
        .route("/api/statistics/export.xlsx", get(export_xlsx))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatisticsQuery {
    /// `YYYY-MM`; default the current month (CST). Not a future month.
    #[param(example = "2026-11")]
    month: Option<String>,
    /// Only buildings of this district (区/县).
    district: Option<String>,
    /// Only buildings of this town (乡镇/街道).
    town: Option<String>,
    /// A row per town (default) or per community.
    #[param(value_type = Option<Level>)]
    level: Option<String>,
    /// `zh` (default) or `en`: the export's headers and file name.
    #[param(value_type = Option<Lang>)]
    lang: Option<String>,
}

/// A parameter given and not blank.
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse(
    q: Result<Query<StatisticsQuery>, QueryRejection>,
    now: OffsetDateTime,
) -> Result<(Request, Lang), ApiError> {
    let Query(q) = q.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let month = match given(q.month) {
        Some(m) => Month::parse(&m).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => Month::containing(now),
    };
    let level = match given(q.level) {
        Some(l) => Level::parse(&l).ok_or_else(|| {
            ApiError::BadRequest(format!("unknown level `{l}`: expected town or community"))
        })?,
        None => Level::Town,
    };
    let lang = match given(q.lang).as_deref() {
        None | Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown lang `{other}`: expected zh or en"
            )));
        }
    };
    let request = Request {
        month,
        level,
        district: given(q.district),
        town: given(q.town),
    };
    Ok((request, lang))
}

/// Why the statistics could not be served: a bad month is the caller's
/// (400); a database or file-writing failure is logged, and the caller
/// sees 500 without internals.
fn refused(e: StatsError) -> Response {
    match e {
        StatsError::BadMonth(_) | StatsError::NotBegun(_) => {
            ApiError::BadRequest(e.to_string()).into_response()
        }
        StatsError::Store(e) => ApiError::Store(e).into_response(),
        StatsError::Export { .. } => {
            tracing::error!(error = %e, "statistics export failed");
            internal()
        }
    }
}

fn internal() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "error": "internal error" })),
    )
        .into_response()
}

async fn build(
    app: &App,
    principal: &Principal,
    q: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<(Report, Lang), Response> {
    let now = OffsetDateTime::now_utc();
    let (request, lang) = parse(q, now).map_err(IntoResponse::into_response)?;
    let visible = app
        .registry
        .buildings()
        .iter()
        .filter(|b| principal.sees(b));
    let report = stats::report(&app.store, visible, &request, now)
        .await
        .map_err(refused)?;
    Ok((report, lang))
}

/// The monthly statistics table (统计表) over the buildings the caller sees.
#[utoipa::path(
    get,
    path = "/api/statistics",
    operation_id = "statistics",
    tag = "statistics",
    params(StatisticsQuery),
    responses(
        (status = 200, description = "Rows per town or community and the totals row.", body = Report),
        (status = 400, description = "A malformed or future month, an unknown level, language or parameter.", body = super::ErrorBody),
    ),
)]
async fn report(
    State(app): State<Arc<App>>,
    principal: Principal,
    q: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<axum::Json<Report>, Response> {
    let (report, _) = build(&app, &principal, q).await?;
    Ok(axum::Json(report))
}

/// The statistics table as CSV (UTF-8 with BOM), Chinese headers unless `lang=en`.
#[utoipa::path(
    get,
    path = "/api/statistics/export.csv",
    operation_id = "export_statistics_csv",
    tag = "statistics",
    params(StatisticsQuery),
    responses(
        (status = 200, description = "The file (`Content-Disposition: attachment`).", content_type = "text/csv; charset=utf-8", body = String,
            headers(("Content-Disposition" = String, description = "`attachment` with an ASCII `filename` and a `filename*` in the asked language."))),
        (status = 400, description = "A malformed or future month, an unknown level, language or parameter.", body = super::ErrorBody),
    ),
)]
async fn export_csv(
    State(app): State<Arc<App>>,
    principal: Principal,
    q: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let (report, lang) = build(&app, &principal, q).await?;
    Ok(download(stats::csv(&report, lang).map_err(refused)?))
}

/// The statistics table as an Excel workbook, Chinese headers unless `lang=en`.
#[utoipa::path(
    get,
    path = "/api/statistics/export.xlsx",
    operation_id = "export_statistics_xlsx",
    tag = "statistics",
    params(StatisticsQuery),
    responses(
        (status = 200, description = "The file (`Content-Disposition: attachment`).", content(("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
            headers(("Content-Disposition" = String, description = "`attachment` with an ASCII `filename` and a `filename*` in the asked language."))),
        (status = 400, description = "A malformed or future month, an unknown level, language or parameter.", body = super::ErrorBody),
    ),
)]
async fn export_xlsx(
    State(app): State<Arc<App>>,
    principal: Principal,
    q: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let (report, lang) = build(&app, &principal, q).await?;
    Ok(download(stats::xlsx(&report, lang).map_err(refused)?))
}

/// RFC 5987 `attr-char`s kept as they are in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `attachment; filename="…"; filename*=UTF-8''…`: browsers that read
/// `filename*` save under the local name, others under the ASCII one.
pub fn content_disposition(ascii: &str, local: &str) -> String {
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(local, ATTR)
    )
}

fn download(export: Export) -> Response {
    let disposition = content_disposition(&export.file_name, &export.file_name_local);
    let Ok(disposition) = HeaderValue::from_str(&disposition) else {
        tracing::error!(file = %export.file_name, "statistics file name is not a header value");
        return internal();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(export.content_type),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        export.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use calamine::{Data, Reader, Xlsx};
    use time::Duration;
    use tower::ServiceExt;

    use super::*;
    use crate::stats::statistics_tests::{district, story};

    /// The story a year earlier (2025: no leap day in between, so every
    /// time keeps its place in its month): November 2025 is over whenever
    /// these tests run.
    const A_YEAR_EARLIER: Duration = Duration::days(-365);

    async fn app() -> (tempfile::TempDir, Arc<App>) {
        let (dir, app) = district().await;
        story(&app, A_YEAR_EARLIER).await;
        (dir, app)
    }

    async fn get(app: &Arc<App>, uri: &str) -> Response {
        routes()
            .with_state(app.clone())
            .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(res: Response) -> Vec<u8> {
        axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec()
    }

    async fn get_json(app: &Arc<App>, uri: &str) -> (StatusCode, serde_json::Value) {
        let res = get(app, uri).await;
        let status = res.status();
        let bytes = body(res).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn header_of(res: &Response, name: header::HeaderName) -> &str {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn statistics_of_a_month_come_as_json_rows_and_a_total() {
        let (_dir, app) = app().await;
        let (status, body) = get_json(&app, "/api/statistics?month=2025-11&district=&town=").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["month"], "2025-11");
        assert_eq!(body["level"], "town");
        assert_eq!(body["as_of"], "2025-12-01T00:00:00+08:00");
        let row = &body["rows"][0];
        assert_eq!(
            (&row["district"], &row["town"]),
            (&json!("梁平区"), &json!("梁山街道"))
        );
        assert!(row.get("community").is_none(), "per town: {row}");
        let numbers = |v: &serde_json::Value| {
            [
                "in_scope",
                "monitored",
                "failing_now",
                "opened",
                "rectified",
                "found_so_far",
                "rectified_so_far",
                "overdue",
            ]
            .map(|k| v[k].as_u64().unwrap_or(u64::MAX))
        };
        assert_eq!(numbers(row), [2, 2, 1, 2, 1, 3, 1, 1]);
        assert!((row["rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            body["rows"][2]["rate"],
            serde_json::Value::Null,
            "nothing found"
        );
        assert_eq!(numbers(&body["total"]), [5, 4, 2, 3, 1, 4, 1, 1]);
        assert_eq!(body["total"]["rate"], 0.25);

        let town = utf8_percent_encode("双桂街道", NON_ALPHANUMERIC);
        let (_, communities) = get_json(
            &app,
            &format!("/api/statistics?month=2025-11&level=community&town={town}"),
        )
        .await;
        assert_eq!(communities["town"], "双桂街道");
        assert_eq!(communities["rows"].as_array().unwrap().len(), 1);
        assert_eq!(communities["rows"][0]["community"], "双桂社区");
    }

    #[tokio::test]
    async fn statistics_refuse_a_bad_month_level_or_language_with_a_json_400() {
        let (_dir, app) = district().await;
        for (uri, says) in [
            ("/api/statistics?month=2026-13", "YYYY-MM"),
            ("/api/statistics?month=abc", "YYYY-MM"),
            ("/api/statistics/export.csv?month=2026-1", "YYYY-MM"),
            ("/api/statistics?level=street", "town or community"),
            ("/api/statistics/export.xlsx?lang=fr", "zh or en"),
            ("/api/statistics?colour=red", "colour"),
        ] {
            let (status, body) = get_json(&app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert!(
                body["error"].as_str().unwrap_or("").contains(says),
                "{uri}: {body}"
            );
        }
        let next = Month::containing(OffsetDateTime::now_utc()).next();
        let (status, body) = get_json(&app, &format!("/api/statistics?month={next}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().contains("has not begun"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn statistics_default_to_the_current_month_in_china_standard_time() {
        let (_dir, app) = district().await;
        let before = Month::containing(OffsetDateTime::now_utc()).to_string();
        let (status, body) = get_json(&app, "/api/statistics").await;
        let after = Month::containing(OffsetDateTime::now_utc()).to_string();
        assert_eq!(status, StatusCode::OK, "{body}");
        let month = body["month"].as_str().unwrap();
        assert!(month == before || month == after, "{month}");
        assert_eq!(body["total"]["in_scope"], 5);
    }

    #[tokio::test]
    async fn the_statistics_csv_has_a_bom_chinese_headers_and_a_totals_line() {
        let (_dir, app) = app().await;
        let res = get(
            &app,
            "/api/statistics/export.csv?month=2025-11&level=community",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            header_of(&res, header::CONTENT_TYPE),
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            header_of(&res, header::CONTENT_DISPOSITION),
            "attachment; filename=\"riser-statistics-2025-11-community.csv\"; \
             filename*=UTF-8''%E6%B6%88%E9%98%B2%E7%94%A8%E6%B0%B4%E7%BB%9F%E8%AE%A1%E8%A1%A8-2025-11-%E7%A4%BE%E5%8C%BA.csv"
        );
        let bytes = body(res).await;
        assert_eq!(bytes[..3], [0xEF, 0xBB, 0xBF], "a UTF-8 byte-order mark");
        let mut reader = ::csv::Reader::from_reader(&bytes[3..]);
        let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            headers,
            [
                "区/县",
                "乡镇/街道",
                "社区",
                "楼栋总数（栋）",
                "已接入监测（栋）",
                "当前不达标（栋）",
                "本月新发现隐患（项）",
                "本月整改销号（项）",
                "累计发现隐患（项）",
                "累计整改销号（项）",
                "整改率（%）",
                "逾期未整改（项）",
            ]
        );
        let lines: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(lines.len(), 5, "four communities and the totals");
        assert_eq!(
            lines[0],
            [
                "梁平区",
                "梁山街道",
                "西平社区",
                "1",
                "1",
                "0",
                "1",
                "1",
                "2",
                "1",
                "50.0",
                "0"
            ]
        );
        assert_eq!(
            lines[3],
            [
                "万州区",
                "高笋塘街道",
                "太白社区",
                "1",
                "1",
                "0",
                "0",
                "0",
                "0",
                "0",
                "",
                "0"
            ],
            "no rate where nothing was found"
        );
        assert_eq!(
            lines[4],
            [
                "合计", "", "", "5", "4", "2", "3", "1", "4", "1", "25.0", "1"
            ]
        );
    }

    #[tokio::test]
    async fn the_statistics_csv_speaks_english_with_lang_en() {
        let (_dir, app) = app().await;
        let res = get(&app, "/api/statistics/export.csv?month=2025-11&lang=en").await;
        assert_eq!(
            header_of(&res, header::CONTENT_DISPOSITION),
            "attachment; filename=\"riser-statistics-2025-11.csv\"; \
             filename*=UTF-8''riser-statistics-2025-11.csv"
        );
        let bytes = body(res).await;
        let mut reader = ::csv::Reader::from_reader(&bytes[3..]);
        let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            headers[..4],
            [
                "District",
                "Town / subdistrict",
                "Buildings in scope",
                "Monitored"
            ]
        );
        assert_eq!(headers[9], "Rectification rate (%)");
        let last = reader.records().last().unwrap().unwrap();
        assert_eq!(&last[0], "Total");
        assert_eq!(&last[5], "3", "hazards found this month");
    }

    #[tokio::test]
    async fn the_statistics_xlsx_opens_with_its_headers_numbers_and_totals() {
        let (_dir, app) = app().await;
        let res = get(&app, "/api/statistics/export.xlsx?month=2025-11").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            header_of(&res, header::CONTENT_TYPE),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert!(header_of(&res, header::CONTENT_DISPOSITION).starts_with(
            "attachment; filename=\"riser-statistics-2025-11.xlsx\"; filename*=UTF-8''"
        ),);
        let bytes = body(res).await;
        let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        assert_eq!(workbook.sheet_names(), ["统计表"]);
        let sheet = workbook.worksheet_range("统计表").unwrap();
        let cell = |row: u32, col: u32| sheet.get_value((row, col)).cloned().unwrap_or(Data::Empty);
        let text = |row, col| match cell(row, col) {
            Data::String(s) => s,
            other => format!("{other:?}"),
        };
        let number = |row, col| match cell(row, col) {
            Data::Float(f) => f,
            Data::Int(i) => i as f64,
            other => panic!("({row}, {col}) is {other:?}, not a number"),
        };
        assert_eq!(text(0, 0), "高层建筑消防用水监测统计表（2025年11月）");
        assert!(text(1, 0).contains("2025-12-01 00:00"), "{}", text(1, 0));
        let h = crate::stats::XLSX_HEADER_ROW;
        let headers: Vec<String> = (0..11).map(|c| text(h, c)).collect();
        assert_eq!(headers[..3], ["区/县", "乡镇/街道", "楼栋总数（栋）"]);
        assert_eq!(headers[9], "整改率（%）");
        assert_eq!(
            (text(h + 1, 0), text(h + 1, 1)),
            ("梁平区".to_owned(), "梁山街道".to_owned())
        );
        let row: Vec<f64> = (2..11).map(|c| number(h + 1, c)).collect();
        assert_eq!(row[..7], [2.0, 2.0, 1.0, 2.0, 1.0, 3.0, 1.0]);
        assert!(
            (row[7] - 1.0 / 3.0).abs() < 1e-9,
            "the rate as a fraction, shown as %"
        );
        assert_eq!(row[8], 1.0, "overdue");
        assert_eq!(
            cell(h + 3, 9),
            Data::Empty,
            "no rate where nothing was found"
        );
        assert_eq!(text(h + 4, 0), "合计");
        let total: Vec<f64> = (2..11).map(|c| number(h + 4, c)).collect();
        assert_eq!(total, [5.0, 4.0, 2.0, 3.0, 1.0, 4.0, 1.0, 0.25, 1.0]);
    }
}
