//! `GET /api/openapi.json`: the OpenAPI document of this API, derived at
//! build time from the handlers' `#[utoipa::path]` annotations and the
//! types they serve. Served without signing in: it describes the API, it
//! shows no data.
//!
//! Conventions applied to every operation here rather than repeated on
//! each ([`Conventions`]): an operation that declares no `security` takes
//! a session cookie or a bearer token (and, on an unsafe method, the
//! session's `X-CSRF-Token`), so answers 401 without one and 403 without
//! the CSRF header; every `/api` operation may answer 500. The tests check
//! that every route [`super::router`] serves is documented with its
//! methods.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{COOKIE, ErrorBody};

const DESCRIPTION: &str = "\
The JSON API of Riser's cloud-ingest: every building's fire-water verdict \
(will the water get up, 水上不去), its points and their history, hazard items \
(隐患) and what people did about them, alerts sent, gateways, monthly \
statistics, and live verdict changes.

Words meant for people (reasons, hazard messages, export headers, the \
acknowledge pages) are Simplified Chinese by default; add `lang=en` to the \
query for English.

Sign in with `POST /api/login`: the answer sets the session cookie \
`riser_session` and carries a CSRF token, which every unsafe request \
(POST, DELETE) of that session echoes in `X-CSRF-Token` (`GET /api/me` \
shows it again). Scripts use an API token instead (`POST /api/tokens`, \
then `Authorization: Bearer rsr_…`), which needs no CSRF header. A server \
configured with `auth.anonymous` answers without either, with that role. \
Each caller sees only the buildings of its role's scope; one it may not \
see is answered as not found.

Errors are JSON `{\"error\": \"…\"}` with the status code.";

/// The whole API. Paths in the order of [`super::router`].
#[derive(OpenApi)]
#[openapi(
    info(title = "Riser cloud-ingest API", description = DESCRIPTION),
    paths(
        super::web::index,
        super::web::asset,
        super::list_buildings,
        super::events::stream,
        super::get_building,
        super::maintenance::list,
        super::maintenance::set,
        super::maintenance::end,
        super::history::get,
        super::hazards::list,
        super::notifications::list,
        super::notifications::digest,
        super::hazards::get,
        super::hazards::acknowledge,
        super::hazards::remark,
        super::hazards::close,
        super::gateways::list,
        super::gateways::get,
        super::ack::show,
        super::ack::acknowledge,
        super::healthz,
        super::metrics,
        serve,
        super::auth::login,
        super::auth::logout,
        super::auth::me,
        super::auth::new_token,
        super::auth::revoke_token,
        super::auth::list_users,
        super::auth::add_user,
        super::auth::disable,
        super::auth::enable,
        super::statistics::report,
        super::statistics::export_csv,
        super::statistics::export_xlsx,
    ),
    // What paths reference without naming it: the SSE data, and the
    // types of query parameters (utoipa collects only bodies' schemas).
    components(schemas(
        ErrorBody,
        crate::BuildingEvent,
        crate::rules::Lang,
        crate::hazards::Severity,
        crate::store::Resolution,
        crate::stats::Level,
    )),
    modifiers(&Conventions),
    tags(
        (name = "buildings", description = "Buildings and their verdicts (every caller sees the buildings of its scope)."),
        (name = "maintenance", description = "Maintenance windows (维保模式): judged, but nobody is paged."),
        (name = "history", description = "A point's readings for charts."),
        (name = "hazards", description = "Hazard items (隐患): open → acknowledged → resolved → closed (销号)."),
        (name = "notifications", description = "The alert outbox and digests (admins; no addresses)."),
        (name = "gateways", description = "Gateways: online, last seen, health, missing messages."),
        (name = "statistics", description = "The monthly statistics table (统计表) and its exports."),
        (name = "events", description = "Live verdict changes (server-sent events)."),
        (name = "auth", description = "Signing in, sessions, API tokens and users."),
        (name = "ack", description = "Acknowledging from an alert's signed link: HTML pages, no sign-in."),
        (name = "operations", description = "Health, Prometheus metrics and this document."),
        (name = "dashboard", description = "The dashboard's HTML page and its static files."),
    )
)]
pub struct ApiDoc;

/// The document as served, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)),
)]
pub async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// Security schemes, and the responses every authenticated or `/api`
/// operation shares.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE,
                "The session cookie `POST /api/login` sets (HttpOnly, SameSite=Strict).",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (from `POST /api/login` or `GET /api/me`), \
                 required with the cookie on POST and DELETE.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rsr_…")
                    .description(Some(
                        "An API token from `POST /api/tokens` (`rsr_…`); no CSRF header needed.",
                    ))
                    .build(),
            ),
        );

        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.patch),
                (true, &mut item.delete),
            ];
            for (unsafe_method, operation) in operations {
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                if operation.security.is_none() {
                    let session = if unsafe_method {
                        requirement(&["session", "csrf"])
                    } else {
                        requirement(&["session"])
                    };
                    operation.security = Some(vec![session, requirement(&["bearer"])]);
                    responses.entry("401".into()).or_insert_with(|| {
                        error("Not signed in: no valid session or token (`sign in first`).")
                    });
                    if unsafe_method {
                        const CSRF: &str =
                            "A session request without its `X-CSRF-Token` (or with a wrong one).";
                        match responses.get_mut("403") {
                            Some(RefOr::T(response)) => {
                                response.description =
                                    format!("{} Or: {CSRF}", response.description);
                            }
                            _ => {
                                responses.insert("403".into(), error(CSRF));
                            }
                        }
                    }
                }
                if path.starts_with("/api/") && path != "/api/openapi.json" {
                    responses.entry("500".into()).or_insert_with(|| {
                        error("The server failed (logged; the answer says only `internal error`).")
                    });
                }
            }
        }
    }
}

/// A requirement of all the schemes `names` at once.
fn requirement(names: &[&str]) -> SecurityRequirement {
    let none = Vec::<String>::new;
    names[1..]
        .iter()
        .fold(SecurityRequirement::new(names[0], none()), |r, name| {
            r.add(*name, none())
        })
}

/// A response with the JSON error body.
fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// `riser_contract::Quality` as documented: the contract crate, shared
/// with the gateway, stays free of OpenAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Quality)]
#[allow(dead_code, reason = "a schema only; values are the contract's")]
pub enum QualityDoc {
    /// The device answered with a value.
    Good,
    /// The device could not be reached.
    Unreachable,
    /// The device answered with a Modbus exception.
    Exception,
    /// The value is outside what the transmitter can measure.
    SensorFault,
    /// The value has not changed for longer than configured.
    Stale,
}

/// `riser_contract::ClockFlag` as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ClockFlag)]
#[allow(dead_code, reason = "a schema only; values are the contract's")]
pub enum ClockFlagDoc {
    /// Taken before the gateway's clock was trusted, restamped later.
    Restamped,
    /// The gateway's clock jumped while it was taken.
    Jumped,
    /// Sent before the clock was trusted: the arrival time is used.
    Unsynced,
}

/// `riser_contract::Stream` as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Stream)]
#[allow(dead_code, reason = "a schema only; values are the contract's")]
pub enum StreamDoc {
    Telemetry,
    Events,
    Status,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use riser_contract::{ClockFlag, Quality, Stream};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::App;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "options", "head", "trace",
    ];

    fn document() -> Value {
        serde_json::from_str(&DOCUMENT).expect("the document is JSON")
    }

    /// Every operation of `doc`: (method, path) to the operation object.
    fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
        let mut out = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    out.insert((method.to_owned(), path.clone()), operation);
                }
            }
        }
        out
    }

    /// The path of every `.route("…", …)` in the API's source, outside its
    /// tests: what the router registers, however the routes are split
    /// across files.
    fn route_paths() -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut paths = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().path();
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for after in code.split(".route(").skip(1) {
                let literal = after.trim_start().strip_prefix('"').unwrap_or_else(|| {
                    panic!("{}: a route whose path is not a literal", file.display())
                });
                paths.insert(literal.split('"').next().unwrap().to_owned());
            }
        }
        paths
    }

    /// The methods `router` serves at `path` (HEAD aside): the `Allow`
    /// header of its 405 to a method no route uses.
    async fn methods(router: &Router, path: &str) -> BTreeSet<String> {
        let uri: Vec<&str> = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect();
        let request = Request::builder()
            .method(Method::from_bytes(b"PROBE").unwrap())
            .uri(uri.join("/"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "`.route(\"{path}\", …)` is in the source, but the router does not serve it"
        );
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m != "head")
            .collect()
    }

    #[tokio::test]
    async fn the_document_is_openapi_3_json_served_without_signing_in() {
        let (_dir, app) = crate::test_app().await;
        // No anonymous access: a caller without credentials.
        let app = Arc::new(App::new(app.registry.clone(), app.store.clone()));
        let get = |uri: &str| {
            super::super::router(app.clone())
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        };
        assert_eq!(
            get("/api/buildings").await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "data needs signing in"
        );

        let response = get("/api/openapi.json").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&bytes).expect("the document is JSON");
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            doc["openapi"]
        );
        assert_eq!(doc["info"]["title"], "Riser cloud-ingest API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .contains("`lang=en`")
        );
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["session"]["in"], "cookie");
        assert_eq!(schemes["session"]["name"], "riser_session");
        assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
    }

    #[tokio::test]
    async fn every_route_the_router_serves_is_documented_with_its_methods() {
        let (_dir, app) = crate::test_app().await;
        let router = super::super::router(app);
        let paths = route_paths();
        assert!(paths.len() >= 30, "the source scan found only {paths:?}");
        let mut served = BTreeSet::new();
        for path in &paths {
            for method in methods(&router, path).await {
                // `{*rest}` in axum is `{rest}` in OpenAPI.
                served.insert((method, path.replace("{*", "{")));
            }
        }
        let documented: BTreeSet<_> = operations(&document()).into_keys().collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in the OpenAPI document (add `#[utoipa::path]` to the handler \
             and list it in `ApiDoc`): {undocumented:?}"
        );
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(phantom.is_empty(), "documented but not served: {phantom:?}");
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.contains(&"#/components/schemas/ErrorBody"));
        for r in found {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for ((method, path), operation) in operations(&doc) {
            for requirement in operation["security"].as_array().unwrap() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                }
            }
        }
    }

    #[test]
    fn every_operation_is_named_tagged_and_answers_errors_as_json() {
        let doc = document();
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let mut ids = BTreeSet::new();
        for ((method, path), operation) in operations(&doc) {
            let at = format!("{method} {path}");
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id), "{at}: operationId {id} is used twice");
            assert!(
                !operation["summary"].as_str().unwrap_or("").is_empty(),
                "{at}: no summary"
            );
            let own = operation["tags"].as_array().unwrap();
            assert!(
                own.len() == 1 && tags.contains(own[0].as_str().unwrap()),
                "{at}: tags {own:?} not one of {tags:?}"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success"
            );
            let signed_in = operation["security"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| !r.as_object().unwrap().is_empty());
            if signed_in {
                assert!(responses.contains_key("401"), "{at}: no 401");
            }
            if !path.starts_with("/api/") {
                continue;
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{at} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn contract_enums_are_documented_with_the_values_they_serialize_to() {
        // Exhaustive: a variant added to the contract fails to compile here.
        fn quality(q: Quality) -> QualityDoc {
            match q {
                Quality::Good => QualityDoc::Good,
                Quality::Unreachable => QualityDoc::Unreachable,
                Quality::Exception => QualityDoc::Exception,
                Quality::SensorFault => QualityDoc::SensorFault,
                Quality::Stale => QualityDoc::Stale,
            }
        }
        fn clock(c: ClockFlag) -> ClockFlagDoc {
            match c {
                ClockFlag::Restamped => ClockFlagDoc::Restamped,
                ClockFlag::Jumped => ClockFlagDoc::Jumped,
                ClockFlag::Unsynced => ClockFlagDoc::Unsynced,
            }
        }
        fn stream(s: Stream) -> StreamDoc {
            match s {
                Stream::Telemetry => StreamDoc::Telemetry,
                Stream::Events => StreamDoc::Events,
                Stream::Status => StreamDoc::Status,
            }
        }
        fn same<C, D>(doc: &Value, name: &str, to_doc: fn(C) -> D)
        where
            C: serde::de::DeserializeOwned,
            D: Serialize,
        {
            let values = doc["components"]["schemas"][name]["enum"]
                .as_array()
                .unwrap();
            for value in values {
                let contract: C = serde_json::from_value(value.clone())
                    .unwrap_or_else(|_| panic!("{name} {value} is not the contract's"));
                assert_eq!(&serde_json::to_value(to_doc(contract)).unwrap(), value);
            }
        }
        let doc = document();
        same(&doc, "Quality", quality);
        same(&doc, "ClockFlag", clock);
        same(&doc, "Stream", stream);
        assert_eq!(
            doc["components"]["schemas"]["Quality"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }
}
