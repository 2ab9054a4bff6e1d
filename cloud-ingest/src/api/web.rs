//! The dashboard's static files (`cloud-ingest/web/`), embedded in the
//! binary at build time so it serves with no internet and nothing to
//! install: `GET /` is `index.html`, `GET /assets/{path}` the rest (the
//! page's scripts, styles and the vendored uPlot). Served with a strict
//! Content-Security-Policy: scripts only from this origin, no inline
//! script, no framing.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

fn serve(path: &str, cache: &'static str) -> Response {
    // Only files of the embedded tree: no `..`, no hidden files, no docs.
    let file = (!path.split('/').any(|p| p.is_empty() || p.starts_with('.')))
        .then(|| WEB.get_file(path))
        .flatten()
        .filter(|_| !path.ends_with(".md"));
    let Some(file) = file else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = file.contents().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The dashboard's page.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "`index.html`.", content_type = "text/html; charset=utf-8", body = String)),
)]
pub async fn index() -> Response {
    // Always revalidated: a new build's page picks up its own assets.
    serve("index.html", "no-cache")
}

/// One of the dashboard's static files (scripts, styles, vendored uPlot).
#[utoipa::path(
    get,
    path = "/assets/{path}",
    operation_id = "dashboard_asset",
    tag = "dashboard",
    security(()),
    params(("path" = String, Path, description = "A file under the dashboard's folder, e.g. `app.js`; may contain `/`.")),
    responses(
        (status = 200, description = "The file, typed by its extension.", content((String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"))),
        (status = 404, description = "No such file.", content_type = "text/plain", body = String),
    ),
)]
pub async fn asset(Path(path): Path<String>) -> Response {
    serve(&path, "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_embedded_and_nothing_else_is_reachable() {
        let page = serve("index.html", "no-cache");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert_eq!(
            serve("vendor/uPlot.iife.min.js", "no-cache").headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        for path in [
            "../Cargo.toml",
            "vendor/../../Cargo.toml",
            "vendor/README.md",
            "",
            "nope.js",
        ] {
            assert_eq!(
                serve(path, "no-cache").status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
}
