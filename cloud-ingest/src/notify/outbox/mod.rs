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
//!
//! Rate limit: past `rate_limit.messages` individual messages to one
//! recipient in `rate_limit.window_minutes`, a further one is stored
//! `digested` and counted into the recipient's gathering digest
//! (`notification_digests`), which is sent as one message listing its
//! items `digest_after_secs` after its first, and no sooner than a window
//! after the previous digest. A digest stops gathering when it is claimed
//! for sending (`attempts` > 0): the claim waits on the row lock a
//! planner holds while adding to it, so no item is added unseen.

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
    /// Rows inserted into a digest (rate limit).
    pub digested: u64,
    /// Roles a transition was for whom nobody could be reached at.
    pub unreachable: Vec<(i64, String, Role)>,
}

/// How routing reads the configuration.
pub struct Routing<'a> {
    pub registry: &'a Registry,
    pub routing: &'a RoutingConfig,
    pub contacts: &'a Contacts,
    pub reopen_quiet: time::Duration,
    pub rate_limit: super::RateLimit,
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
        total.digested += chunk.digested;
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
            let key = recipient.key();
            let state = if state == "pending"
                && over_limit(&mut tx, &key, now_ms, &routing.rate_limit).await?
            {
                "digested"
            } else {
                state
            };
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO notifications (transition_id, hazard_id, building_id, action,
                   escalation, recipient, role, party, channel, target, lang, state,
                   created_ms, next_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (transition_id, recipient) DO NOTHING
                 RETURNING id",
            )
            .bind(id)
            .bind(hazard_id)
            .bind(&building_id)
            .bind(action.as_str())
            .bind(i64::from(escalation))
            .bind(&key)
            .bind(recipient.role.as_str())
            .bind(&recipient.party)
            .bind(recipient.target.channel().as_str())
            .bind(target_json(recipient)?)
            .bind(lang_str(recipient.lang))
            .bind(state)
            .bind(now_ms)
            .bind(next_ms)
            .fetch_optional(&mut *tx)
            .await?;
            match (inserted, state) {
                (None, _) => {}
                (Some(_), "suppressed") => planned.suppressed += 1,
                (Some(id), "digested") => {
                    let digest =
                        gather(&mut tx, recipient, &key, now_ms, &routing.rate_limit).await?;
                    sqlx::query("UPDATE notifications SET digest_id = $1 WHERE id = $2")
                        .bind(digest)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    planned.digested += 1;
                }
                (Some(_), _) => planned.pending += 1,
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

/// Whether `recipient` had its share of individual messages in the
/// window before `now_ms`.
async fn over_limit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    recipient: &str,
    now_ms: i64,
    limit: &super::RateLimit,
) -> Result<bool, StoreError> {
    let sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications
         WHERE recipient = $1 AND created_ms > $2 AND state IN ('pending', 'sent', 'failed')",
    )
    .bind(recipient)
    .bind(now_ms - limit.window_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(sent >= i64::from(limit.messages))
}

/// Counts one more item into `recipient`'s gathering digest, starting
/// one if none gathers; returns its id.
async fn gather(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    recipient: &route::Recipient,
    key: &str,
    now_ms: i64,
    limit: &super::RateLimit,
) -> Result<i64, StoreError> {
    loop {
        // Taking the row lock: a claim of this digest waits for our commit.
        let gathering: Option<i64> = sqlx::query_scalar(
            "UPDATE notification_digests SET items = items + 1
             WHERE recipient = $1 AND state = 'pending' AND attempts = 0
             RETURNING id",
        )
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(id) = gathering {
            return Ok(id);
        }
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(created_ms) FROM notification_digests WHERE recipient = $1",
        )
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
        let due = (now_ms + limit.digest_after_ms()).max(previous.map_or(i64::MIN, |p| {
            p + limit.digest_after_ms() + limit.window_ms()
        }));
        sqlx::query(
            "INSERT INTO notification_digests
               (recipient, role, party, channel, target, lang, state, created_ms, next_ms)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)
             ON CONFLICT (recipient) WHERE state = 'pending' AND attempts = 0 DO NOTHING",
        )
        .bind(key)
        .bind(recipient.role.as_str())
        .bind(&recipient.party)
        .bind(recipient.target.channel().as_str())
        .bind(target_json(recipient)?)
        .bind(lang_str(recipient.lang))
        .bind(now_ms)
        .bind(due)
        .execute(&mut **tx)
        .await?;
    }
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

/// The address as stored (`channel::Target` as JSON).
fn target_json(recipient: &route::Recipient) -> Result<String, StoreError> {
    serde_json::to_string(&recipient.target).map_err(|e| StoreError::Corrupt(e.to_string()))
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
    /// The digest it went out in (`state` `digested`).
    pub digest_id: Option<i64>,
}

const SELECT_NOTIFICATIONS: &str = "SELECT id, transition_id, hazard_id, building_id, action,
    escalation, role, party, channel, state, attempts, next_ms, sent_ms, last_error, digest_id
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
        digest_id: r.try_get("digest_id")?,
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

/// What [`list`] selects; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<String>,
    pub hazard: Option<i64>,
    pub building: Option<String>,
    pub digest: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// The states a notification can be in.
pub const STATES: [&str; 5] = ["pending", "sent", "failed", "suppressed", "digested"];

/// Notifications matching `filter`, newest first, and how many match.
pub async fn list(store: &Store, filter: &Filter) -> Result<(Vec<Notification>, i64), StoreError> {
    let mut clauses = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.state.is_some() {
        clauses.push(format!("state = {}", next()));
    }
    if filter.hazard.is_some() {
        clauses.push(format!("hazard_id = {}", next()));
    }
    if filter.building.is_some() {
        clauses.push(format!("building_id = {}", next()));
    }
    if filter.digest.is_some() {
        clauses.push(format!("digest_id = {}", next()));
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let (limit, offset) = (next(), next());
    macro_rules! bind_filter {
        ($q:expr) => {{
            let mut q = $q;
            if let Some(v) = &filter.state {
                q = q.bind(v.clone());
            }
            if let Some(v) = filter.hazard {
                q = q.bind(v);
            }
            if let Some(v) = &filter.building {
                q = q.bind(v.clone());
            }
            if let Some(v) = filter.digest {
                q = q.bind(v);
            }
            q
        }};
    }
    let rows = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT_NOTIFICATIONS}{filter_sql} ORDER BY id DESC LIMIT {limit} OFFSET {offset}"
    ))))
    .bind(filter.limit)
    .bind(filter.offset)
    .fetch_all(store.pool())
    .await?;
    let total: i64 = bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM notifications{filter_sql}"
    ))))
    .fetch_one(store.pool())
    .await?;
    Ok((
        rows.iter().map(notification).collect::<Result<_, _>>()?,
        total,
    ))
}

/// A digest: several items to one recipient in one message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Digest {
    pub id: i64,
    pub role: String,
    pub party: String,
    pub channel: String,
    pub items: i64,
    pub state: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_ms: i64,
    pub sent_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// One digest.
pub async fn digest(store: &Store, id: i64) -> Result<Option<Digest>, StoreError> {
    let row = sqlx::query(
        "SELECT id, role, party, channel, items, state, attempts, created_ms, next_ms,
           sent_ms, last_error
         FROM notification_digests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Digest {
        id: r.try_get("id")?,
        role: r.try_get("role")?,
        party: r.try_get("party")?,
        channel: r.try_get("channel")?,
        items: r.try_get("items")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        created_ms: r.try_get("created_ms")?,
        next_ms: r.try_get("next_ms")?,
        sent_ms: r.try_get("sent_ms")?,
        last_error: r.try_get("last_error")?,
    }))
}

#[cfg(test)]
mod tests;
