//! The notification outbox, sending side: due `pending` rows are claimed,
//! rendered ([`super::message`]) and sent through [`super::channel`].
//!
//! Claiming moves a row's `next_ms` a lease ahead and counts the attempt,
//! in one conditional UPDATE, so two nodes never send the same row at
//! once. Sent: `sent`. A transient failure: `pending` again after a
//! back-off (30 s doubling, at most 1 h) until `max_attempts`, then
//! `failed`; a permanent one: `failed` at once, with the error, listed by
//! the API. A node that dies between its send and its mark leaves the row
//! claimed: once the lease runs out it is sent again with the same
//! delivery id (`riser-{id}`: the webhook's `X-Riser-Delivery`, the
//! e-mail's Message-ID, Aliyun's OutId), by which a receiver drops the
//! copy. A `resolved` message whose item is active again by its time is
//! `suppressed` (the item flapped).
//!
//! Digests (`notification_digests`, see [`super::outbox`]) are claimed,
//! sent and marked the same way, with the delivery id `riser-digest-{id}`;
//! each listed item that can still be acknowledged carries its own link.

use std::time::Duration;

use futures::future::join_all;
use sqlx::Row;
use time::OffsetDateTime;

use crate::App;
use crate::hazards::{self, Action, State};
use crate::rules::Lang;
use crate::store::{StoreError, to_ms};

use super::channel::{Channels, Outgoing, SendError, Target};
use super::message::{DigestItem, render_alert, render_digest};

/// Rows claimed per round.
pub const CLAIM: i64 = 64;

/// How long a claimed row is left to its sender before another may send
/// it: the default of `notify.lease_secs`.
pub const LEASE: Duration = Duration::from_secs(60);

/// What one [`deliver_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub sent: u64,
    /// To be tried again later.
    pub retrying: u64,
    pub failed: u64,
    pub suppressed: u64,
}

impl Delivered {
    /// Rows claimed.
    pub fn claimed(&self) -> u64 {
        self.sent + self.retrying + self.failed + self.suppressed
    }
}

/// The pause before attempt `attempts + 1`: 30 s doubling, at most 1 h.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 7) as u32;
    Duration::from_secs(30u64 << exp).min(Duration::from_secs(3600))
}

/// What a claimed row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A `notifications` row: one transition of one item.
    Alert,
    /// A `notification_digests` row: several items at once.
    Digest,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Alert => "notifications",
            Kind::Digest => "notification_digests",
        }
    }
}

struct Claimed {
    kind: Kind,
    id: i64,
    /// Of an alert (0 for a digest).
    hazard_id: i64,
    building_id: String,
    action: String,
    /// Of a digest: whom it is for.
    party: String,
    target: String,
    lang: String,
    attempts: i64,
}

/// Claims up to [`CLAIM`] due rows of `kind`: their attempt counted and
/// their time moved a lease ahead, in one statement.
async fn claim(
    app: &App,
    kind: Kind,
    lease: Duration,
    now_ms: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let table = kind.table();
    let columns = match kind {
        Kind::Alert => "id, hazard_id, building_id, action, '' AS party, target, lang, attempts",
        Kind::Digest => {
            "id, CAST(0 AS BIGINT) AS hazard_id, '' AS building_id, '' AS action, party, target, lang, attempts"
        }
    };
    let rows = {
        let _turn = app.store.turn().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET attempts = attempts + 1, next_ms = $1
             WHERE id IN (SELECT id FROM {table}
                          WHERE state = 'pending' AND next_ms <= $2
                          ORDER BY next_ms, id LIMIT {CLAIM})
               AND state = 'pending' AND next_ms <= $2
             RETURNING {columns}"
        )))
        .bind(now_ms + lease.as_millis() as i64)
        .bind(now_ms)
        .fetch_all(app.store.pool())
        .await?
    };
    Ok(rows
        .iter()
        .map(|r| {
            Ok(Claimed {
                kind,
                id: r.try_get("id")?,
                hazard_id: r.try_get("hazard_id")?,
                building_id: r.try_get("building_id")?,
                action: r.try_get("action")?,
                party: r.try_get("party")?,
                target: r.try_get("target")?,
                lang: r.try_get("lang")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?)
}

/// Claims up to [`CLAIM`] due alerts and as many due digests and sends
/// them, side by side.
pub async fn deliver_due(
    app: &App,
    channels: &Channels,
    max_attempts: i64,
    lease: Duration,
    now: OffsetDateTime,
) -> Result<Delivered, StoreError> {
    let now_ms = to_ms(now);
    let mut claimed = claim(app, Kind::Alert, lease, now_ms).await?;
    claimed.extend(claim(app, Kind::Digest, lease, now_ms).await?);
    let outcomes = join_all(claimed.iter().map(|c| async move {
        match c.kind {
            Kind::Alert => send_one(app, channels, c).await,
            Kind::Digest => send_digest(app, channels, c).await,
        }
    }))
    .await;
    let mut done = Delivered::default();
    for (c, outcome) in claimed.iter().zip(outcomes) {
        let (state, next_ms, error) = match outcome {
            Ok(Some(())) => {
                done.sent += 1;
                ("sent", now_ms, None)
            }
            Ok(None) => {
                done.suppressed += 1;
                // An attempt cut off by a crash may have been received.
                let note = (c.attempts > 1).then(|| {
                    "no longer to be sent; an earlier attempt, cut off before it was marked, may have reached the recipient".to_owned()
                });
                ("suppressed", now_ms, note)
            }
            Err(SendError::Transient(e)) if c.attempts < max_attempts => {
                done.retrying += 1;
                tracing::warn!(notification = c.id, kind = ?c.kind, attempts = c.attempts, error = %e, "alert not delivered; retrying");
                let next = now_ms + backoff(c.attempts).as_millis() as i64;
                ("pending", next, Some(e))
            }
            Err(e) => {
                done.failed += 1;
                tracing::error!(notification = c.id, kind = ?c.kind, hazard = c.hazard_id, attempts = c.attempts, error = %e, "alert could not be delivered");
                ("failed", now_ms, Some(e.to_string()))
            }
        };
        let _turn = app.store.turn().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET state = $1, next_ms = $2, last_error = $3,
               sent_ms = CASE WHEN $1 = 'sent' THEN $4 ELSE sent_ms END
             WHERE id = $5",
            c.kind.table()
        )))
        .bind(state)
        .bind(next_ms)
        .bind(error)
        .bind(to_ms(OffsetDateTime::now_utc()))
        .bind(c.id)
        .execute(app.store.pool())
        .await?;
    }
    Ok(done)
}

/// Sends one claimed row: `Ok(None)` when it is no longer to be sent.
async fn send_one(app: &App, channels: &Channels, c: &Claimed) -> Result<Option<()>, SendError> {
    let permanent = |what: String| SendError::Permanent(what);
    let target: Target = serde_json::from_str(&c.target)
        .map_err(|e| permanent(format!("stored target unreadable: {e}")))?;
    let action = Action::parse(&c.action)
        .ok_or_else(|| permanent(format!("stored action `{}` unknown", c.action)))?;
    let hazard = hazards::get(&app.store, c.hazard_id)
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .ok_or_else(|| permanent(format!("hazard {} is gone", c.hazard_id)))?;
    if action == Action::Resolved && hazard.state.active() {
        return Ok(None);
    }
    let building = app
        .registry
        .get(&c.building_id)
        .ok_or_else(|| permanent(format!("building {} left the registry", c.building_id)))?;
    let lang = if c.lang == "en" { Lang::En } else { Lang::Zh };
    // A link while there is something to acknowledge.
    let link = ack_link(app, c.id, action, hazard.state, OffsetDateTime::now_utc());
    let rendered = render_alert(&hazard, building, action, link.as_deref(), lang);
    let delivery_id = format!("riser-{}", c.id);
    let outgoing = Outgoing {
        delivery_id: &delivery_id,
        subject: &rendered.subject,
        text: &rendered.text,
        markdown: &rendered.markdown,
        link: link.as_deref(),
        json: &rendered.json,
        sms_params: &rendered.sms_params,
    };
    channels.send(&target, &outgoing).await.map(Some)
}

/// The acknowledge link of notification `id`, while there is something
/// to acknowledge (an open item, told it opened, came back or escalated).
fn ack_link(
    app: &App,
    id: i64,
    action: Action,
    state: State,
    now: OffsetDateTime,
) -> Option<String> {
    match (&app.links, action, state) {
        (Some(links), Action::Opened | Action::Reopened | Action::Escalated, State::Open) => {
            Some(links.url(id, now))
        }
        _ => None,
    }
}

/// Sends one claimed digest: every item it gathered, as they are now.
async fn send_digest(app: &App, channels: &Channels, c: &Claimed) -> Result<Option<()>, SendError> {
    let transient = |e: StoreError| SendError::Transient(e.to_string());
    let target: Target = serde_json::from_str(&c.target)
        .map_err(|e| SendError::Permanent(format!("stored target unreadable: {e}")))?;
    let rows = sqlx::query(
        "SELECT id, hazard_id, building_id, action, escalation FROM notifications
         WHERE digest_id = $1 ORDER BY id",
    )
    .bind(c.id)
    .fetch_all(app.store.pool())
    .await
    .map_err(|e| transient(e.into()))?;
    let now = OffsetDateTime::now_utc();
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let get = |e: sqlx::Error| SendError::Permanent(format!("stored item unreadable: {e}"));
        let id: i64 = row.try_get("id").map_err(get)?;
        let hazard_id: i64 = row.try_get("hazard_id").map_err(get)?;
        let building_id: String = row.try_get("building_id").map_err(get)?;
        let action: String = row.try_get("action").map_err(get)?;
        let escalation: i64 = row.try_get("escalation").map_err(get)?;
        // Items whose item or building is gone are left out, not the digest.
        let (Some(action), Some(building)) =
            (Action::parse(&action), app.registry.get(&building_id))
        else {
            continue;
        };
        let Some(hazard) = hazards::get(&app.store, hazard_id)
            .await
            .map_err(transient)?
        else {
            continue;
        };
        if action == Action::Resolved && hazard.state.active() {
            continue;
        }
        let link = ack_link(app, id, action, hazard.state, now);
        items.push(DigestItem {
            hazard,
            building,
            action,
            escalation: escalation.clamp(0, 2) as u8,
            link,
        });
    }
    if items.is_empty() {
        return Ok(None);
    }
    let lang = if c.lang == "en" { Lang::En } else { Lang::Zh };
    let rendered = render_digest(&c.party, &items, lang);
    let delivery_id = format!("riser-digest-{}", c.id);
    let outgoing = Outgoing {
        delivery_id: &delivery_id,
        subject: &rendered.subject,
        text: &rendered.text,
        markdown: &rendered.markdown,
        link: None,
        json: &rendered.json,
        sms_params: &rendered.sms_params,
    };
    channels.send(&target, &outgoing).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_30_s_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(20), Duration::from_secs(3600));
    }
}
