//! Keeping the outbox within its byte limit on a long outage: first the
//! oldest routine readings are thinned to one per point (and quality) per
//! interval, then, if that is not enough, the oldest thinned rows are
//! dropped. Events live in the `outbox` table and are never touched. What
//! was thinned and dropped is counted (persistently) and reported in health.

use std::collections::HashSet;
use std::time::Duration;

use riser_contract::{Quality, Reading, Telemetry};
use sqlx::{Row, SqliteConnection};

use std::sync::atomic::Ordering;

use super::writer::staged_body;
use super::{OutboxError, Shared, add_to_counter, delete_ids, first_ms, used_bytes};

/// Keeps the first reading of each point and quality in each `interval`
/// bucket of reading time; returns the kept readings in their order. Pure.
pub fn thin(readings: Vec<Reading>, interval: Duration) -> Vec<Reading> {
    let bucket_ms = (interval.as_millis() as i64).max(1);
    let mut seen: HashSet<(String, Quality, i64)> = HashSet::new();
    readings
        .into_iter()
        .filter(|r| {
            let bucket = riser_contract::unix_ms(r.ts).div_euclid(bucket_ms);
            seen.insert((r.point.clone(), r.quality, bucket))
        })
        .collect()
}

/// What keeping within the limit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// Under the limit (after thinning or dropping, if any was needed).
    Within,
    /// Still over: only events (and held readings) are left, and they are kept.
    EventsOnly(u64),
}

/// Rows thinned per transaction.
const THIN_ROWS: i64 = 64;

pub(super) async fn keep_within_limit(
    conn: &mut SqliteConnection,
    shared: &Shared,
) -> Result<Kept, OutboxError> {
    let limit = shared.options.max_bytes;
    // Thin down to 90 % of the limit so the next few writes do not thin again.
    let target = limit / 10 * 9;
    if used_bytes(conn).await? <= limit {
        return Ok(Kept::Within);
    }
    let mut thinned_total = 0;
    while used_bytes(conn).await? > target {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows = sqlx::query(
            "SELECT id, body FROM staged WHERE held = 0 AND thinned = 0 ORDER BY id LIMIT ?1",
        )
        .bind(THIN_ROWS)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        let first_id: i64 = rows[0].get("id");
        let mut readings = Vec::new();
        for row in &rows {
            let id: i64 = row.get("id");
            let staged: Telemetry =
                serde_json::from_slice(row.get::<&[u8], _>("body")).map_err(|e| {
                    OutboxError::Staged {
                        id,
                        error: e.to_string(),
                    }
                })?;
            readings.extend(staged.readings);
        }
        let before = readings.len();
        let kept = thin(readings, shared.options.thin_interval);
        let removed = (before - kept.len()) as u64;
        delete_ids(
            &mut tx,
            "staged",
            rows.iter().map(|r| r.get::<i64, _>("id")),
        )
        .await?;
        if !kept.is_empty() {
            let first_ms = first_ms(kept.iter().map(|r| r.ts)).unwrap_or(0);
            let n = kept.len();
            // The first row's id keeps the thinned row in its place in line.
            sqlx::query(
                "INSERT INTO staged (id, first_ms, readings, thinned, body) VALUES (?1, ?2, ?3, 1, ?4)",
            )
            .bind(first_id)
            .bind(first_ms)
            .bind(n as i64)
            .bind(staged_body(shared, kept))
            .execute(&mut *tx)
            .await?;
        }
        add_to_counter(&mut tx, "thinned", removed).await?;
        tx.commit().await?;
        shared.thinned.fetch_add(removed, Ordering::Relaxed);
        thinned_total += removed;
    }
    let mut dropped_total = 0;
    while used_bytes(conn).await? > target {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows =
            sqlx::query("SELECT id, readings FROM staged WHERE held = 0 ORDER BY id LIMIT ?1")
                .bind(THIN_ROWS)
                .fetch_all(&mut *tx)
                .await?;
        if rows.is_empty() {
            break;
        }
        let dropped: i64 = rows.iter().map(|r| r.get::<i64, _>("readings")).sum();
        delete_ids(
            &mut tx,
            "staged",
            rows.iter().map(|r| r.get::<i64, _>("id")),
        )
        .await?;
        add_to_counter(&mut tx, "dropped", dropped as u64).await?;
        tx.commit().await?;
        shared.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        dropped_total += dropped as u64;
    }
    if thinned_total > 0 || dropped_total > 0 {
        tracing::warn!(
            thinned = thinned_total,
            dropped = dropped_total,
            limit_bytes = limit,
            "outbox reached its size limit; oldest routine readings thinned (events kept)"
        );
    }
    let bytes = used_bytes(conn).await?;
    if bytes > limit {
        Ok(Kept::EventsOnly(bytes))
    } else {
        Ok(Kept::Within)
    }
}
