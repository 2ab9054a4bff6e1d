//! The notification outbox, planning side: hazard transitions become one
//! `notifications` row per recipient, exactly once.
//!
//! A transition is committed with the hazard change it records (judging,
//! escalation, a person's action), so nothing can change a hazard without
//! leaving one. [`plan`] takes the transitions not yet planned, routes
//! each ([`super::route`]), inserts its rows and marks it planned, all in
//! one transaction: a crash before the commit plans it again from scratch,
//! after it never again; `UNIQUE (transition_id, recipient)` holds even if
//! two nodes planned the same transition. On PostgreSQL the transitions
//! are taken `FOR UPDATE SKIP LOCKED`, so several nodes plan side by side;
//! on SQLite under the writer turn.
//!
//! Flapping: a `reopened` transition within `reopen_quiet` of the item's
//! last `resolved` one is stored `suppressed` (nobody is paged again for
//! a condition that came straight back), and a `resolved` message waits
//! `reopen_quiet` before it may be sent, so its sender can drop it if the
//! item is active again by then.

use sqlx::Row;
use time::OffsetDateTime;

use crate::hazards::{Action, Severity};
use crate::registry::Registry;
use crate::store::{Backend, Store, StoreError, to_ms};

use super::route::{self, Contacts, Role, RoutingConfig};

/// Most transitions planned in one transaction.
pub const PLAN_CHUNK: i64 = 500;

/// What one [`plan`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub transitions: u64,
    /// Rows inserted to be sent.
    pub pending: u64,
    /// Rows inserted already suppressed (flapping).
    pub suppressed: u64,
    /// Roles a transition was for whom nobody could be reached at.
    pub unreachable: Vec<(i64, String, Role)>,
}

/// How routing reads the configuration.
pub struct Routing<'a> {
    pub registry: &'a Registry,
    pub routing: &'a RoutingConfig,
    pub contacts: &'a Contacts,
    pub reopen_quiet: time::Duration,
}

/// Plans every transition not yet planned, [`PLAN_CHUNK`] per
/// transaction, until none is left.
pub async fn plan(
    store: &Store,
    routing: &Routing<'_>,
    now: OffsetDateTime,
) -> Result<Planned, StoreError> {
    let mut total = Planned::default();
    loop {
        let chunk = plan_chunk(store, routing, now).await?;
        let done = chunk.transitions < PLAN_CHUNK as u64;
        total.transitions += chunk.transitions;
        total.pending += chunk.pending;
        total.suppressed += chunk.suppressed;
        total.unreachable.extend(chunk.unreachable);
        if done {
            return Ok(total);
        }
    }
}

async fn plan_chunk(
    store: &Store,
    routing: &Routing<'_>,
    now: OffsetDateTime,
) -> Result<Planned, StoreError> {
    let now_ms = to_ms(now);
    let _turn = store.turn().await;
    let mut tx = store.pool().begin().await?;
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE OF t SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.id, t.hazard_id, t.action, t.note, t.at_ms,
                h.building_id, h.severity, h.escalation
         FROM hazard_transitions t JOIN hazards h ON h.id = t.hazard_id
         WHERE t.planned_ms IS NULL ORDER BY t.id LIMIT {PLAN_CHUNK}{lock}"
    )))
    .fetch_all(&mut *tx)
    .await?;
    let mut planned = Planned::default();
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let hazard_id: i64 = row.try_get("hazard_id")?;
        let action: String = row.try_get("action")?;
        let note: String = row.try_get("note")?;
        let at_ms: i64 = row.try_get("at_ms")?;
        let building_id: String = row.try_get("building_id")?;
        let severity: String = row.try_get("severity")?;
        let current_escalation: i64 = row.try_get("escalation")?;
        planned.transitions += 1;
        let action = Action::parse(&action)
            .ok_or_else(|| StoreError::Corrupt(format!("transition {id}: action `{action}`")))?;
        let severity = Severity::parse(&severity).ok_or_else(|| {
            StoreError::Corrupt(format!("hazard {hazard_id}: severity `{severity}`"))
        })?;
        // The level this transition is about: an escalation's own step;
        // at opening none; later the item's.
        let escalation: u8 = match action {
            Action::Escalated if note == "overdue" => 2,
            Action::Escalated => 1,
            Action::Opened => 0,
            _ => current_escalation.clamp(0, 2) as u8,
        };
        let roles = route::roles(routing.routing, severity, action, escalation);
        let building = routing.registry.get(&building_id);
        let (recipients, unreachable) = match building {
            Some(b) => route::recipients(b, &roles, routing.contacts),
            None => (Vec::new(), roles.clone()),
        };
        planned.unreachable.extend(
            unreachable
                .into_iter()
                .map(|r| (id, building_id.clone(), r)),
        );
        let quiet_ms = routing.reopen_quiet.whole_milliseconds() as i64;
        let (state, next_ms) = match action {
            Action::Reopened if flapped(&mut tx, hazard_id, id, at_ms, quiet_ms).await? => {
                ("suppressed", now_ms)
            }
            Action::Resolved => ("pending", at_ms.saturating_add(quiet_ms).max(now_ms)),
            _ => ("pending", now_ms),
        };
        for recipient in &recipients {
            let inserted = sqlx::query(
                "INSERT INTO notifications (transition_id, hazard_id, building_id, action,
                   escalation, recipient, role, party, channel, target, lang, state,
                   created_ms, next_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (transition_id, recipient) DO NOTHING",
            )
            .bind(id)
            .bind(hazard_id)
            .bind(&building_id)
            .bind(action.as_str())
            .bind(i64::from(escalation))
            .bind(recipient.key())
            .bind(recipient.role.as_str())
            .bind(&recipient.party)
            .bind(recipient.target.channel().as_str())
            .bind(
                serde_json::to_string(&recipient.target)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
            .bind(lang_str(recipient.lang))
            .bind(state)
            .bind(now_ms)
            .bind(next_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            match (inserted, state) {
                (0, _) => {}
                (_, "suppressed") => planned.suppressed += 1,
                _ => planned.pending += 1,
            }
        }
        sqlx::query("UPDATE hazard_transitions SET planned_ms = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(planned)
}

/// Whether the item cleared less than `quiet_ms` before this reopening.
async fn flapped(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    hazard_id: i64,
    transition_id: i64,
    at_ms: i64,
    quiet_ms: i64,
) -> Result<bool, StoreError> {
    let resolved: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(at_ms) FROM hazard_transitions
         WHERE hazard_id = $1 AND id < $2 AND action = 'resolved'",
    )
    .bind(hazard_id)
    .bind(transition_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(resolved.is_some_and(|r| at_ms - r < quiet_ms))
}

fn lang_str(lang: crate::rules::Lang) -> &'static str {
    match lang {
        crate::rules::Lang::Zh => "zh",
        crate::rules::Lang::En => "en",
    }
}

/// A stored notification, as the API lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    pub id: i64,
    pub transition_id: i64,
    pub hazard_id: i64,
    pub building_id: String,
    pub action: String,
    pub escalation: i64,
    pub role: String,
    pub party: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub sent_ms: Option<i64>,
    pub last_error: Option<String>,
}

const SELECT_NOTIFICATIONS: &str = "SELECT id, transition_id, hazard_id, building_id, action,
    escalation, role, party, channel, state, attempts, next_ms, sent_ms, last_error
    FROM notifications";

fn notification(r: &sqlx::any::AnyRow) -> Result<Notification, sqlx::Error> {
    Ok(Notification {
        id: r.try_get("id")?,
        transition_id: r.try_get("transition_id")?,
        hazard_id: r.try_get("hazard_id")?,
        building_id: r.try_get("building_id")?,
        action: r.try_get("action")?,
        escalation: r.try_get("escalation")?,
        role: r.try_get("role")?,
        party: r.try_get("party")?,
        channel: r.try_get("channel")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_ms: r.try_get("next_ms")?,
        sent_ms: r.try_get("sent_ms")?,
        last_error: r.try_get("last_error")?,
    })
}

/// The notifications of one hazard item, oldest first.
pub async fn of_hazard(store: &Store, hazard_id: i64) -> Result<Vec<Notification>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT_NOTIFICATIONS} WHERE hazard_id = $1 ORDER BY id"
    )))
    .bind(hazard_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(notification).collect::<Result<_, _>>()?)
}

/// One notification.
pub async fn get(store: &Store, id: i64) -> Result<Option<Notification>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT_NOTIFICATIONS} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(notification).transpose()?)
}

#[cfg(test)]
mod tests;
