//! The notification outbox as people inspect it: what was sent to whom,
//! what is still retrying, and what failed for good (see
//! [`crate::notify`]).
//!
//! - `GET /api/notifications?state=&hazard=&building=&digest=&limit=&offset=`:
//!   `{"total", "items"}`, newest first. `state` is one of `pending`,
//!   `sent`, `failed`, `suppressed` (flapping), `digested` (rate-limited
//!   into a digest); `limit` 1-1000 (default 100).
//! - `GET /api/notifications/digests/{id}`: one digest, with its items.
//! - `GET /api/hazards/{id}` lists the item's notifications too.
//!
//! The two lists are for admins (they span every building and party).
//!
//! Addresses are never served: a notification names the recipient's role,
//! party and channel only (robot URLs and webhook secrets are
//! credentials).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ApiError;
use crate::App;
use crate::notify::outbox::{self, Digest, Filter, Notification, STATES};
use crate::store::from_ms;

const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

/// A notification as served.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationOut {
    pub id: i64,
    pub hazard_id: i64,
    pub building_id: String,
    /// The transition it tells of: opened, reopened, escalated, resolved.
    pub action: String,
    /// The escalation step it was about (0 none).
    pub escalation: i64,
    /// contractor, building_manager, management_unit or fire_rescue.
    pub role: String,
    pub party: String,
    /// webhook, wecom, dingtalk, email or sms.
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    /// Next attempt (pending), else when it was settled.
    #[serde(with = "time::serde::rfc3339")]
    pub next_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub digest_id: Option<i64>,
    /// The id a receiver sees (`X-Riser-Delivery`, Message-ID).
    pub delivery_id: String,
}

impl From<Notification> for NotificationOut {
    fn from(n: Notification) -> Self {
        Self {
            delivery_id: format!("riser-{}", n.id),
            id: n.id,
            hazard_id: n.hazard_id,
            building_id: n.building_id,
            action: n.action,
            escalation: n.escalation,
            role: n.role,
            party: n.party,
            channel: n.channel,
            state: n.state,
            attempts: n.attempts,
            next_at: from_ms(n.next_ms),
            sent_at: n.sent_ms.map(from_ms),
            last_error: n.last_error,
            digest_id: n.digest_id,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationList {
    /// Notifications matching the filters, over all pages.
    pub total: i64,
    pub items: Vec<NotificationOut>,
}

/// Several notifications to one recipient, sent as one message.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DigestOut {
    pub id: i64,
    pub role: String,
    pub party: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub delivery_id: String,
    /// Oldest first.
    pub items: Vec<NotificationOut>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `sent`, `failed`, `suppressed` (flapping) or `digested`
    /// (rate-limited into a digest).
    state: Option<String>,
    /// Only those about this hazard item.
    hazard: Option<i64>,
    /// Only those about this building (its id).
    building: Option<String>,
    /// Only those gathered into this digest.
    digest: Option<i64>,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip; default 0.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

fn filter(q: ListQuery) -> Result<Filter, ApiError> {
    if let Some(state) = &q.state
        && !STATES.contains(&state.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown state `{state}`: expected one of {}",
            STATES.join(", ")
        )));
    }
    let (limit, offset) = super::page(q.limit, q.offset, DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(Filter {
        state: q.state,
        hazard: q.hazard,
        building: q.building,
        digest: q.digest,
        limit,
        offset,
    })
}

/// The notification outbox, newest first (admins only).
#[utoipa::path(
    get,
    path = "/api/notifications",
    operation_id = "list_notifications",
    tag = "notifications",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of notifications and the total matching.", body = NotificationList),
        (status = 400, description = "An unknown parameter or state, or `limit`/`offset` out of range.", body = super::ErrorBody),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: crate::auth::Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<NotificationList>, ApiError> {
    admin(&principal)?;
    let q = q
        .map(|Query(q)| q)
        .map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let (items, total) = outbox::list(&app.store, &filter(q)?).await?;
    Ok(Json(NotificationList {
        total,
        items: items.into_iter().map(NotificationOut::from).collect(),
    }))
}

/// One digest with its items, oldest first (admins only).
#[utoipa::path(
    get,
    path = "/api/notifications/digests/{id}",
    operation_id = "get_digest",
    tag = "notifications",
    params(("id" = i64, Path, description = "Digest id.")),
    responses(
        (status = 200, description = "The digest.", body = DigestOut),
        (status = 403, description = "Not an admin.", body = super::ErrorBody),
        (status = 404, description = "Unknown digest.", body = super::ErrorBody),
    ),
)]
pub async fn digest(
    State(app): State<Arc<App>>,
    principal: crate::auth::Principal,
    Path(id): Path<String>,
) -> Result<Json<DigestOut>, ApiError> {
    admin(&principal)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("digest"))?;
    let Digest {
        id,
        role,
        party,
        channel,
        state,
        attempts,
        created_ms,
        next_ms,
        sent_ms,
        last_error,
        items: _,
    } = outbox::digest(&app.store, id)
        .await?
        .ok_or(ApiError::NotFound("digest"))?;
    let (items, _) = outbox::list(
        &app.store,
        &Filter {
            digest: Some(id),
            limit: i64::MAX,
            ..Filter::default()
        },
    )
    .await?;
    Ok(Json(DigestOut {
        id,
        role,
        party,
        channel,
        state,
        attempts,
        created_at: from_ms(created_ms),
        next_at: from_ms(next_ms),
        sent_at: sent_ms.map(from_ms),
        last_error,
        delivery_id: format!("riser-digest-{id}"),
        items: items.into_iter().rev().map(NotificationOut::from).collect(),
    }))
}

/// The outbox spans every building and party: admins only (an item's own
/// notifications are listed with the item, for whoever sees it).
fn admin(principal: &crate::auth::Principal) -> Result<(), ApiError> {
    super::allowed(
        principal.role == crate::auth::Role::Admin,
        "list the notification outbox",
    )
}

/// An item's notifications, oldest first.
pub async fn of_hazard(app: &App, hazard_id: i64) -> Result<Vec<NotificationOut>, ApiError> {
    Ok(outbox::of_hazard(&app.store, hazard_id)
        .await?
        .into_iter()
        .map(NotificationOut::from)
        .collect())
}
