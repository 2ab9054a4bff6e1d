//! `GET /ack/{token}` and `POST /ack/{token}`: acknowledging a hazard item
//! from the link in its alert, without logging in (see
//! [`crate::notify::link`]). The GET shows the item and a button; only
//! the button's POST acknowledges, as the party the alert was sent to, so
//! a chat app fetching the link for a preview changes nothing.
//! Acknowledging stops the item's escalation. Simplified Chinese, `?lang=en`
//! for English.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::App;
use crate::hazards::{self, Hazard, HazardError, State as ItemState};
use crate::notify::link::LinkError;
use crate::notify::outbox;
use crate::rules::{Lang, render};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `en` for English; anything else Simplified Chinese.
    #[serde(default)]
    #[param(value_type = Option<Lang>)]
    lang: Option<String>,
}

fn lang(q: &LangQuery) -> Lang {
    if q.lang.as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Zh
    }
}

/// Text for HTML: names and remarks are people's input.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let html_lang = if lang == Lang::En { "en" } else { "zh-CN" };
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}}\
             button{{font-size:1.2em;padding:.5em 1.5em}}</style></head><body><h1>{title}</h1>{body}</body></html>",
            title = esc(title)
        )),
    )
        .into_response()
}

fn refused(error: LinkError, lang: Lang) -> Response {
    let (status, zh, en) = match error {
        LinkError::Expired => (
            StatusCode::GONE,
            "链接已过期，请登录系统确认。",
            "This link has expired; acknowledge in the dashboard.",
        ),
        LinkError::Malformed | LinkError::Forged => (
            StatusCode::FORBIDDEN,
            "链接无效。",
            "This link is not valid.",
        ),
    };
    let text = if lang == Lang::En { en } else { zh };
    page(status, lang, text, "")
}

/// The item a token names, and the party the alert went to.
async fn resolve(app: &App, token: &str, lang: Lang) -> Result<(Hazard, String), Response> {
    let Some(links) = &app.links else {
        return Err(page(StatusCode::NOT_FOUND, lang, "Not found", ""));
    };
    let id = links
        .verify(token, OffsetDateTime::now_utc())
        .map_err(|e| refused(e, lang))?;
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "acknowledge link lookup failed");
        page(StatusCode::INTERNAL_SERVER_ERROR, lang, "Error", "")
    };
    let notification = outbox::get(&app.store, id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| refused(LinkError::Forged, lang))?;
    let hazard = hazards::get(&app.store, notification.hazard_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| refused(LinkError::Forged, lang))?;
    Ok((hazard, notification.party))
}

fn describe(app: &App, hazard: &Hazard, lang: Lang) -> String {
    let building = app.registry.get(&hazard.building_id);
    let name = building.map_or(hazard.building_id.as_str(), |b| b.name.as_str());
    let place = building.map_or(String::new(), |b| {
        format!("{}{}{}", b.district, b.town, b.community)
    });
    format!(
        "<p><strong>{}</strong> {}</p><p>{}</p>",
        esc(name),
        esc(&place),
        esc(&render(&hazard.reason(), lang))
    )
}

fn state_line(hazard: &Hazard, lang: Lang) -> String {
    match (hazard.state, lang) {
        (ItemState::Acknowledged, Lang::Zh) => format!(
            "<p>已由 {} 确认。</p>",
            esc(hazard.acknowledged_by.as_deref().unwrap_or(""))
        ),
        (ItemState::Acknowledged, Lang::En) => format!(
            "<p>Acknowledged by {}.</p>",
            esc(hazard.acknowledged_by.as_deref().unwrap_or(""))
        ),
        (ItemState::Resolved, Lang::Zh) => "<p>隐患已消除，待销号。</p>".into(),
        (ItemState::Resolved, Lang::En) => "<p>The condition has cleared.</p>".into(),
        (ItemState::Closed, Lang::Zh) => "<p>隐患已销号。</p>".into(),
        (ItemState::Closed, Lang::En) => "<p>The item is closed.</p>".into(),
        (ItemState::Open, _) => String::new(),
    }
}

fn title(id: i64, lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("隐患 #{id}"),
        Lang::En => format!("Hazard #{id}"),
    }
}

/// `GET /ack/{token}`: the item, and a button while it is open.
#[utoipa::path(
    get,
    path = "/ack/{token}",
    operation_id = "show_ack_link",
    tag = "ack",
    security(()),
    params(("token" = String, Path, description = "The signed token from the alert's link."), LangQuery),
    responses(
        (status = 200, description = "The item, with an acknowledge button while it is open.", content_type = "text/html; charset=utf-8", body = String),
        (status = 403, description = "The link is not valid.", content_type = "text/html; charset=utf-8", body = String),
        (status = 404, description = "Acknowledge links are not configured.", content_type = "text/html; charset=utf-8", body = String),
        (status = 410, description = "The link has expired.", content_type = "text/html; charset=utf-8", body = String),
    ),
)]
pub async fn show(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang(&q);
    let (hazard, party) = match resolve(&app, &token, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut body = describe(&app, &hazard, lang);
    if hazard.state == ItemState::Open {
        let button = match lang {
            Lang::Zh => format!("确认收到（{}）", esc(&party)),
            Lang::En => format!("Acknowledge ({})", esc(&party)),
        };
        body.push_str(&format!(
            "<form method=\"post\"><button type=\"submit\">{button}</button></form>"
        ));
    } else {
        body.push_str(&state_line(&hazard, lang));
    }
    let title = title(hazard.id, lang);
    page(StatusCode::OK, lang, &title, &body)
}

/// `POST /ack/{token}`: acknowledges the item as the alert's party.
#[utoipa::path(
    post,
    path = "/ack/{token}",
    operation_id = "acknowledge_by_link",
    tag = "ack",
    security(()),
    params(("token" = String, Path, description = "The signed token from the alert's link."), LangQuery),
    responses(
        (status = 200, description = "Acknowledged: the item and who acknowledged it.", content_type = "text/html; charset=utf-8", body = String),
        (status = 403, description = "The link is not valid.", content_type = "text/html; charset=utf-8", body = String),
        (status = 404, description = "Acknowledge links are not configured.", content_type = "text/html; charset=utf-8", body = String),
        (status = 409, description = "The item was no longer open: its state instead.", content_type = "text/html; charset=utf-8", body = String),
        (status = 410, description = "The link has expired.", content_type = "text/html; charset=utf-8", body = String),
    ),
)]
pub async fn acknowledge(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang(&q);
    let (hazard, party) = match resolve(&app, &token, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let by = match lang {
        Lang::Zh => format!("{party}（消息链接）"),
        Lang::En => format!("{party} (alert link)"),
    };
    let title = title(hazard.id, lang);
    match hazards::acknowledge(&app.store, hazard.id, &by, OffsetDateTime::now_utc()).await {
        Ok(done) => {
            tracing::info!(hazard = done.id, by = %by, "hazard acknowledged from an alert link");
            let done_line = state_line(&done, lang);
            page(
                StatusCode::OK,
                lang,
                &title,
                &format!("{}{done_line}", describe(&app, &done, lang)),
            )
        }
        Err(HazardError::WrongState(_)) => page(
            StatusCode::CONFLICT,
            lang,
            &title,
            &format!(
                "{}{}",
                describe(&app, &hazard, lang),
                state_line(&hazard, lang)
            ),
        ),
        Err(error) => {
            tracing::error!(error = %error, hazard = hazard.id, "acknowledging from a link failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, lang, "Error", "")
        }
    }
}
