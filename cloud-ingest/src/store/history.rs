//! Reading history: raw readings kept for `[history] raw_days`, the
//! per-minute min/max/avg of every point kept for `minute_days`, and the
//! pruning that enforces both (and `received_days` on the dedupe table).
//!
//! - **Rollup.** [`add_minutes`] folds one batch's new reading rows into
//!   `readings_minute` in the batch's own transaction: aggregated in memory
//!   per (gateway, point, minute of placed time), then one multi-row upsert
//!   per chunk. Messages are deduplicated before their rows are built, so a
//!   redelivered message never counts twice; backfilled readings land in
//!   their own minutes. Only readings with a value and quality `good` enter
//!   min/max/avg; the others are counted in `bad`.
//! - **Charts.** [`Store::series`] reads raw readings for ranges up to a
//!   day, minutes up to a week, hours (summed from minutes) beyond, or what
//!   is asked; raw falls back to minutes where raw readings were pruned.
//! - **Retention.** [`Store::prune`] deletes in chunks of [`PRUNE_CHUNK`]
//!   rows, each its own commit taking the SQLite writer turn, so ingest
//!   waits for one chunk at most. See each step for why it stays cheap on
//!   a table of 100 M readings without another index on `readings`.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use riser_contract::Quality;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use super::rows::RowShape;
use super::{Backend, ReadingRow, Store, StoreError, from_ms, to_ms};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Rows deleted per statement (and commit) when pruning.
pub const PRUNE_CHUNK: i64 = 10_000;

/// `[history]`: how long history is kept. A `*_days` key of 0 keeps forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Days raw readings are kept, by reading time; 0: forever. Pruning
    /// walks readings in arrival order, so one that arrived late (from a
    /// gateway's backlog) may stay until `raw_days` after its arrival.
    #[serde(default = "default_raw_days")]
    pub raw_days: u32,
    /// Days the per-minute min/max/avg of every point is kept; 0: forever.
    /// At least `raw_days`: charts longer than a day read it. The default
    /// is about 5 years, the span maintenance records of a building's fire
    /// systems are commonly kept for; check the local requirement.
    #[serde(default = "default_minute_days")]
    pub minute_days: u32,
    /// Days a received message's (gateway, stream, epoch, seq) is
    /// remembered to drop it if delivered again; 0: forever (the table
    /// grows by one row per message). A message redelivered after longer
    /// would be stored twice (its readings twice in raw and minute history).
    /// Only a message whose acknowledgement was lost is sent again: by the
    /// gateway on its next connection, from an outbox bounded by its
    /// `outbox.max_bytes`, or by the broker to a node that stopped between
    /// storing and acknowledging it. Either would have to stay away this
    /// long right after such a loss.
    #[serde(default = "default_received_days")]
    pub received_days: u32,
    /// Seconds between two pruning runs (the first runs at start-up).
    #[serde(default = "default_prune_every_secs")]
    pub prune_every_secs: u64,
}

fn default_raw_days() -> u32 {
    90
}
fn default_minute_days() -> u32 {
    1830
}
fn default_received_days() -> u32 {
    30
}
fn default_prune_every_secs() -> u64 {
    3600
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            raw_days: default_raw_days(),
            minute_days: default_minute_days(),
            received_days: default_received_days(),
            prune_every_secs: default_prune_every_secs(),
        }
    }
}

impl HistoryConfig {
    /// What is wrong with it, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.prune_every_secs == 0 {
            return Err("key `history.prune_every_secs`: must be at least 1".into());
        }
        if self.minute_days != 0 && (self.raw_days == 0 || self.minute_days < self.raw_days) {
            return Err(format!(
                "key `history.minute_days`: {} keeps minutes shorter than raw readings \
                 (`history.raw_days` = {}, 0 = forever); charts longer than a day would be empty",
                self.minute_days, self.raw_days
            ));
        }
        Ok(())
    }
}

/// Time older than `days` before `now`, in ms; `None` for 0 (forever).
fn cutoff(now: OffsetDateTime, days: u32) -> Option<i64> {
    (days > 0).then(|| to_ms(now) - i64::from(days) * DAY_MS)
}

/// Start of the bucket of `bucket_ms` that holds `ms`.
fn floor(ms: i64, bucket_ms: i64) -> i64 {
    ms - ms.rem_euclid(bucket_ms)
}

/// One minute of one point, as added up from a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Minute {
    n: i64,
    bad: i64,
    min: Option<f64>,
    max: Option<f64>,
    sum: f64,
}

/// The batch's readings per (gateway, point, minute), in key order (the
/// order rows are locked in on PostgreSQL).
fn aggregate<'a>(rows: &[ReadingRow<'a>]) -> Vec<((&'a str, &'a str, i64), Minute)> {
    let good = Quality::Good.as_str();
    let mut minutes: HashMap<(&str, &str, i64), Minute> = HashMap::new();
    for r in rows {
        let m = minutes
            .entry((r.gateway, r.point, floor(r.ts_ms, MINUTE_MS)))
            .or_insert(Minute {
                n: 0,
                bad: 0,
                min: None,
                max: None,
                sum: 0.0,
            });
        match r.value {
            Some(v) if r.quality == good => {
                m.n += 1;
                m.sum += v;
                m.min = Some(m.min.map_or(v, |min| min.min(v)));
                m.max = Some(m.max.map_or(v, |max| max.max(v)));
            }
            _ => m.bad += 1,
        }
    }
    let mut minutes: Vec<_> = minutes.into_iter().collect();
    minutes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    minutes
}

/// Adds a batch's new reading rows to `readings_minute`, in the batch's
/// transaction: one upsert of up to `per_insert` minutes per statement.
pub(super) async fn add_minutes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[ReadingRow<'_>],
    per_insert: usize,
) -> Result<(), sqlx::Error> {
    // min and max are bound as numbers even when `n` is 0 and made NULL
    // here (see [`super::rows::split_double`]).
    const SHAPE: RowShape = RowShape {
        params: 8,
        columns: &[
            "{1}",
            "{2}",
            "{3}",
            "{4}",
            "{5}",
            "CASE WHEN {4} > 0 THEN {6} END",
            "CASE WHEN {4} > 0 THEN {7} END",
            "{8}",
        ],
    };
    let minutes = aggregate(rows);
    for chunk in minutes.chunks(per_insert) {
        let mut sql = String::from(
            "INSERT INTO readings_minute (gateway, point, minute_ms, n, bad, min, max, sum) ",
        );
        SHAPE.write(&mut sql, backend, chunk.len());
        sql.push_str(
            " ON CONFLICT (gateway, point, minute_ms) DO UPDATE SET
               n = readings_minute.n + excluded.n,
               bad = readings_minute.bad + excluded.bad,
               min = CASE WHEN readings_minute.min IS NULL OR excluded.min < readings_minute.min
                     THEN excluded.min ELSE readings_minute.min END,
               max = CASE WHEN readings_minute.max IS NULL OR excluded.max > readings_minute.max
                     THEN excluded.max ELSE readings_minute.max END,
               sum = readings_minute.sum + excluded.sum",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((gateway, point, minute_ms), m) in chunk {
            query = query
                .bind(*gateway)
                .bind(*point)
                .bind(*minute_ms)
                .bind(m.n)
                .bind(m.bad)
                .bind(m.min.unwrap_or(0.0))
                .bind(m.max.unwrap_or(0.0))
                .bind(m.sum);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How finely a history is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Every stored reading.
    Raw,
    /// Per-minute min/max/avg.
    Minute,
    /// Per-hour min/max/avg, summed from the minutes.
    Hour,
}

impl Resolution {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "raw" => Some(Resolution::Raw),
            "minute" => Some(Resolution::Minute),
            "hour" => Some(Resolution::Hour),
            _ => None,
        }
    }

    /// The resolution shown for a range of `span` when none is asked:
    /// raw up to a day, minutes up to a week, hours beyond.
    pub fn for_span(span: Duration) -> Self {
        if span <= Duration::days(1) {
            Resolution::Raw
        } else if span <= Duration::days(7) {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }
}

/// One stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading {
    pub ts: OffsetDateTime,
    pub value: Option<f64>,
    pub quality: Quality,
}

/// One minute or hour of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Its start.
    pub start: OffsetDateTime,
    /// Readings with a value and quality `good`: min, max and avg are theirs.
    pub n: u64,
    /// Readings without a value or of another quality.
    pub bad: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
}

/// A point's history over a range, at the resolution it was read at.
#[derive(Debug, Clone, PartialEq)]
pub enum Series {
    Raw(Vec<RawReading>),
    Minute(Vec<Bucket>),
    Hour(Vec<Bucket>),
}

impl Series {
    pub fn resolution(&self) -> Resolution {
        match self {
            Series::Raw(_) => Resolution::Raw,
            Series::Minute(_) => Resolution::Minute,
            Series::Hour(_) => Resolution::Hour,
        }
    }
}

/// Rows deleted by one [`Store::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub readings: u64,
    pub minutes: u64,
    pub received: u64,
}

impl Store {
    /// The history of `point` of `gateway` from `from` (inclusive) to `to`:
    /// at `resolution`, or if `None` at [`Resolution::for_span`], except
    /// that raw readings already pruned from the range are shown as minutes.
    pub async fn series(
        &self,
        gateway: &str,
        point: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        resolution: Option<Resolution>,
    ) -> Result<Series, StoreError> {
        let resolution = match resolution {
            Some(r) => r,
            None => match Resolution::for_span(to - from) {
                Resolution::Raw if self.raw_pruned_before(gateway, point, from).await? => {
                    Resolution::Minute
                }
                r => r,
            },
        };
        Ok(match resolution {
            Resolution::Raw => Series::Raw(self.raw_readings(gateway, point, from, to).await?),
            Resolution::Minute => Series::Minute(self.minutes(gateway, point, from, to).await?),
            Resolution::Hour => Series::Hour(self.hours(gateway, point, from, to).await?),
        })
    }

    /// Whether raw readings of the point before `from` were pruned: minutes
    /// exist from before its oldest raw reading. Two index seeks.
    async fn raw_pruned_before(
        &self,
        gateway: &str,
        point: &str,
        from: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // Written to walk either back end's index in time order and stop
        // at the first match (SQLite's is by gateway and time).
        let oldest_raw: Option<i64> = sqlx::query_scalar(
            "SELECT ts_ms FROM readings WHERE gateway = $1 AND point = $2 ORDER BY ts_ms LIMIT 1",
        )
        .bind(gateway)
        .bind(point)
        .fetch_optional(&self.pool)
        .await?;
        if oldest_raw.is_some_and(|oldest| oldest <= to_ms(from)) {
            return Ok(false);
        }
        let oldest_minute: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(minute_ms) FROM readings_minute WHERE gateway = $1 AND point = $2",
        )
        .bind(gateway)
        .bind(point)
        .fetch_one(&self.pool)
        .await?;
        Ok(match (oldest_minute, oldest_raw) {
            (Some(minute), Some(raw)) => minute < floor(raw, MINUTE_MS),
            (Some(_), None) => true,
            (None, _) => false,
        })
    }

    /// Stored readings of a point from `from` (inclusive) to `to`, oldest first.
    pub async fn raw_readings(
        &self,
        gateway: &str,
        point: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<RawReading>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, value, quality FROM readings
             WHERE gateway = $1 AND point = $2 AND ts_ms >= $3 AND ts_ms < $4
             ORDER BY ts_ms, id",
        )
        .bind(gateway)
        .bind(point)
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let quality: String = row.get("quality");
                Ok(RawReading {
                    ts: from_ms(row.get("ts_ms")),
                    value: row.get("value"),
                    quality: Quality::parse(&quality).ok_or(StoreError::Corrupt(quality))?,
                })
            })
            .collect()
    }

    /// The minutes of a point that overlap `from`..`to`, oldest first.
    pub async fn minutes(
        &self,
        gateway: &str,
        point: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bucket>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute_ms AS start_ms, n, bad, min, max, sum FROM readings_minute
             WHERE gateway = $1 AND point = $2 AND minute_ms >= $3 AND minute_ms < $4
             ORDER BY minute_ms",
        )
        .bind(gateway)
        .bind(point)
        .bind(floor(to_ms(from), MINUTE_MS))
        .bind(to_ms(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(bucket).collect())
    }

    /// The hours of a point that overlap `from`..`to`, oldest first, added
    /// up from its minutes.
    pub async fn hours(
        &self,
        gateway: &str,
        point: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bucket>, StoreError> {
        // Floored for times before 1970 too, as `floor` does.
        let rows = sqlx::query(
            "SELECT minute_ms - ((minute_ms % 3600000 + 3600000) % 3600000) AS start_ms,
               CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(bad) AS BIGINT) AS bad,
               MIN(min) AS min, MAX(max) AS max, SUM(sum) AS sum
             FROM readings_minute
             WHERE gateway = $1 AND point = $2 AND minute_ms >= $3 AND minute_ms < $4
             GROUP BY 1 ORDER BY 1",
        )
        .bind(gateway)
        .bind(point)
        .bind(floor(to_ms(from), HOUR_MS))
        .bind(to_ms(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(bucket).collect())
    }

    /// Deletes raw readings older than `raw_days`, minutes older than
    /// `minute_days` and remembered messages older than `received_days`
    /// before `now`, each in chunks of [`PRUNE_CHUNK`] rows.
    pub async fn prune(
        &self,
        config: &HistoryConfig,
        now: OffsetDateTime,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if let Some(cutoff) = cutoff(now, config.raw_days) {
            pruned.readings = self.prune_readings(cutoff).await?;
        }
        if let Some(cutoff) = cutoff(now, config.minute_days) {
            pruned.minutes = self.prune_minutes(cutoff).await?;
        }
        if let Some(cutoff) = cutoff(now, config.received_days) {
            pruned.received = self.prune_received(cutoff).await?;
        }
        Ok(pruned)
    }

    /// Readings placed before `cutoff`, swept in id (arrival) order: each
    /// step takes the next [`PRUNE_CHUNK`] ids from the primary key and
    /// deletes those of them placed before `cutoff`; the sweep ends at the
    /// first step that deletes none. A reading is placed at most
    /// [`super::FUTURE_TOLERANCE`] after its arrival, so every chunk that
    /// arrived before `cutoff` is old and the sweep stops only past it;
    /// a reading that arrived late from a backlog waits for the sweep to
    /// reach its arrival. Each step reads and deletes adjacent rows of the
    /// table (no scan, no index on `ts_ms` to maintain on every insert,
    /// which `readings_by_point` order could not serve without one walk per
    /// point across the whole table).
    async fn prune_readings(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        let mut after = i64::MIN;
        loop {
            let last: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT MAX(id) FROM
                   (SELECT id FROM readings WHERE id > $1 ORDER BY id LIMIT {PRUNE_CHUNK}) AS chunk"
            )))
            .bind(after)
            .fetch_one(&self.pool)
            .await?;
            let Some(last) = last else { break };
            let _turn = self.turn().await;
            let deleted =
                sqlx::query("DELETE FROM readings WHERE id > $1 AND id <= $2 AND ts_ms < $3")
                    .bind(after)
                    .bind(last)
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            total += deleted;
            if deleted == 0 {
                break;
            }
            after = last;
        }
        Ok(total)
    }

    /// Minutes before `cutoff`, point by point along the primary key: one
    /// seek finds each point's oldest minute, and its old minutes are
    /// adjacent rows. Commits every [`PRUNE_CHUNK`] rows or so.
    async fn prune_minutes(&self, cutoff: i64) -> Result<u64, StoreError> {
        // Which points have old minutes, read without the writer turn.
        let mut old: Vec<(String, String, i64)> = Vec::new();
        let mut next = sqlx::query(
            "SELECT gateway, point, minute_ms FROM readings_minute
             ORDER BY gateway, point, minute_ms LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        while let Some(row) = next {
            let (gateway, point): (String, String) = (row.get("gateway"), row.get("point"));
            next = sqlx::query(
                "SELECT gateway, point, minute_ms FROM readings_minute
                 WHERE (gateway, point) > ($1, $2) ORDER BY gateway, point, minute_ms LIMIT 1",
            )
            .bind(&gateway)
            .bind(&point)
            .fetch_optional(&self.pool)
            .await?;
            let oldest: i64 = row.get("minute_ms");
            if oldest < cutoff {
                old.push((gateway, point, oldest));
            }
        }
        let mut total = 0;
        let mut turn = self.turn().await;
        let mut tx = self.pool.begin().await?;
        let mut in_tx = 0;
        for (gateway, point, oldest) in &old {
            let mut from = *oldest;
            while from < cutoff {
                let until = cutoff.min(from.saturating_add(PRUNE_CHUNK * MINUTE_MS));
                let deleted = sqlx::query(
                    "DELETE FROM readings_minute
                     WHERE gateway = $1 AND point = $2 AND minute_ms < $3",
                )
                .bind(gateway)
                .bind(point)
                .bind(until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                total += deleted;
                in_tx += deleted;
                from = until;
                if in_tx >= PRUNE_CHUNK as u64 {
                    tx.commit().await?;
                    drop(turn);
                    turn = self.turn().await;
                    tx = self.pool.begin().await?;
                    in_tx = 0;
                }
            }
        }
        tx.commit().await?;
        drop(turn);
        Ok(total)
    }

    /// Remembered messages received before `cutoff`, oldest first through
    /// `received_by_time`, a chunk per commit. One batch's messages share
    /// their arrival time, so a chunk may exceed [`PRUNE_CHUNK`] by a batch.
    async fn prune_received(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let bound: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT received_ms FROM received WHERE received_ms < $1
                 ORDER BY received_ms LIMIT 1 OFFSET {}",
                PRUNE_CHUNK - 1
            )))
            .bind(cutoff)
            .fetch_optional(&self.pool)
            .await?;
            let _turn = self.turn().await;
            let deleted = match bound {
                Some(bound) => sqlx::query("DELETE FROM received WHERE received_ms <= $1")
                    .bind(bound)
                    .execute(&self.pool)
                    .await?
                    .rows_affected(),
                None => sqlx::query("DELETE FROM received WHERE received_ms < $1")
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected(),
            };
            total += deleted;
            if bound.is_none() {
                break;
            }
        }
        Ok(total)
    }
}

fn bucket(row: &sqlx::any::AnyRow) -> Bucket {
    let n: i64 = row.get("n");
    let sum: Option<f64> = row.get("sum");
    Bucket {
        start: from_ms(row.get("start_ms")),
        n: n as u64,
        bad: row.get::<i64, _>("bad") as u64,
        min: row.get("min"),
        max: row.get("max"),
        avg: sum.filter(|_| n > 0).map(|sum| sum / n as f64),
    }
}

/// Prunes `store` now and every `config.prune_every_secs` until `shutdown`
/// (a run cut short loses nothing: each chunk is its own commit).
pub async fn prune_periodically(store: Store, config: HistoryConfig, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(StdDuration::from_secs(config.prune_every_secs));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = store.prune(&config, OffsetDateTime::now_utc()) => result,
        };
        match result {
            Ok(p) if p == Pruned::default() => tracing::debug!("history pruned: nothing old"),
            Ok(p) => tracing::info!(
                readings = p.readings,
                minutes = p.minutes,
                received = p.received,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "history pruned"
            ),
            Err(error) => {
                tracing::warn!(error = %error, "pruning history failed; retried next run")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Outcome, test_store};
    use riser_contract::{Message, Reading, Stream, Telemetry};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-10 08:00 UTC);

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path()).await;
        (dir, store)
    }

    fn reading(point: &str, ts: OffsetDateTime, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            point: point.into(),
            ts,
            value,
            unit: None,
            quality,
            exception: None,
            clock: None,
        }
    }

    fn level(ts: OffsetDateTime, value: f64) -> Reading {
        reading("tank.level", ts, Some(value), Quality::Good)
    }

    fn telemetry(seq: u64, readings: Vec<Reading>) -> Message {
        Message::Telemetry(Telemetry::new("gw-1", seq, readings))
    }

    async fn minutes_of(store: &Store, point: &str) -> Vec<Bucket> {
        store
            .minutes(
                "gw-1",
                point,
                OffsetDateTime::UNIX_EPOCH,
                NOW + Duration::days(1),
            )
            .await
            .unwrap()
    }

    fn at(
        minute: OffsetDateTime,
        n: u64,
        bad: u64,
        min_max_avg: Option<(f64, f64, f64)>,
    ) -> Bucket {
        Bucket {
            start: minute,
            n,
            bad,
            min: min_max_avg.map(|m| m.0),
            max: min_max_avg.map(|m| m.1),
            avg: min_max_avg.map(|m| m.2),
        }
    }

    #[tokio::test]
    async fn minutes_keep_min_max_avg_and_count_across_two_batches() {
        let (_dir, store) = store().await;
        let m0 = datetime!(2026-12-10 07:00 UTC);
        let s = Duration::seconds;
        store
            .ingest(
                &telemetry(
                    1,
                    vec![
                        level(m0 + s(5), 2.0),
                        level(m0 + s(30), 3.0),
                        level(m0 + s(70), 5.0),
                    ],
                ),
                NOW,
            )
            .await
            .unwrap();
        store
            .ingest(&telemetry(2, vec![level(m0 + s(50), 1.0)]), NOW)
            .await
            .unwrap();
        assert_eq!(
            minutes_of(&store, "tank.level").await,
            vec![
                at(m0, 3, 0, Some((1.0, 3.0, 2.0))),
                at(m0 + Duration::minutes(1), 1, 0, Some((5.0, 5.0, 5.0))),
            ]
        );
    }

    #[tokio::test]
    async fn a_redelivered_message_does_not_count_twice() {
        let (_dir, store) = store().await;
        let m0 = datetime!(2026-12-10 07:00 UTC);
        let first = telemetry(1, vec![level(m0, 2.0)]);
        let second = telemetry(2, vec![level(m0 + Duration::seconds(10), 4.0)]);
        assert_eq!(store.ingest(&first, NOW).await.unwrap(), Outcome::Stored);
        assert_eq!(store.ingest(&first, NOW).await.unwrap(), Outcome::Duplicate);
        // Twice in one batch, and once more in the next.
        assert_eq!(
            store
                .ingest_batch(&[second.clone(), second.clone(), first.clone()], NOW)
                .await
                .unwrap(),
            [Outcome::Stored, Outcome::Duplicate, Outcome::Duplicate]
        );
        assert_eq!(
            store.ingest(&second, NOW).await.unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(
            minutes_of(&store, "tank.level").await,
            vec![at(m0, 2, 0, Some((2.0, 4.0, 3.0)))]
        );
    }

    #[tokio::test]
    async fn readings_without_a_good_value_are_counted_apart_from_min_max_avg() {
        let (_dir, store) = store().await;
        let m0 = datetime!(2026-12-10 07:00 UTC);
        let m1 = m0 + Duration::minutes(1);
        let p = "riser.pressure";
        store
            .ingest(
                &telemetry(
                    1,
                    vec![
                        reading(p, m0, Some(0.3), Quality::Good),
                        reading(p, m0, Some(9.9), Quality::SensorFault),
                        reading(p, m0, None, Quality::Unreachable),
                        reading(p, m0, Some(0.0), Quality::Stale),
                        reading(p, m1, Some(9.9), Quality::SensorFault),
                    ],
                ),
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(
            minutes_of(&store, p).await,
            vec![at(m0, 1, 3, Some((0.3, 0.3, 0.3))), at(m1, 0, 1, None)]
        );
        // A good value later fills a minute that had none, statement after
        // statement of one shape (see `add_minutes` on NULL floats).
        let mut seq = 1;
        for minute in 1..=8 {
            let t = m0 + Duration::minutes(minute);
            for r in [
                reading(p, t, Some(9.9), Quality::SensorFault),
                reading(p, t, Some(0.25), Quality::Good),
            ] {
                seq += 1;
                store.ingest(&telemetry(seq, vec![r]), NOW).await.unwrap();
            }
        }
        let minutes = minutes_of(&store, p).await;
        assert_eq!(minutes[1], at(m1, 1, 2, Some((0.25, 0.25, 0.25))));
        assert_eq!(
            minutes[8],
            at(m0 + Duration::minutes(8), 1, 1, Some((0.25, 0.25, 0.25)))
        );
    }

    #[tokio::test]
    async fn backfilled_readings_land_in_the_minutes_they_were_taken() {
        let (_dir, store) = store().await;
        let taken = datetime!(2026-12-03 02:17:40 UTC);
        let mut t = Telemetry::new("gw-1", 1, vec![level(taken, 2.0)]);
        t.replay = true;
        store.ingest(&Message::Telemetry(t), NOW).await.unwrap();
        assert_eq!(
            minutes_of(&store, "tank.level").await,
            vec![at(
                datetime!(2026-12-03 02:17 UTC),
                1,
                0,
                Some((2.0, 2.0, 2.0))
            )]
        );
    }

    #[tokio::test]
    async fn hours_add_up_their_minutes() {
        let (_dir, store) = store().await;
        let h0 = datetime!(2026-12-10 05:00 UTC);
        let readings = [(0, 1.0), (59, 3.0), (60, 10.0), (119, 20.0), (121, 5.0)]
            .map(|(minute, v)| level(h0 + Duration::minutes(minute), v));
        store
            .ingest(&telemetry(1, readings.to_vec()), NOW)
            .await
            .unwrap();
        let hours = store
            .hours("gw-1", "tank.level", h0 + Duration::minutes(30), NOW)
            .await
            .unwrap();
        assert_eq!(
            hours,
            vec![
                at(h0, 2, 0, Some((1.0, 3.0, 2.0))),
                at(h0 + Duration::hours(1), 2, 0, Some((10.0, 20.0, 15.0))),
                at(h0 + Duration::hours(2), 1, 0, Some((5.0, 5.0, 5.0))),
            ],
            "the hour `from` falls in is whole"
        );
    }

    fn keep(raw_days: u32, minute_days: u32, received_days: u32) -> HistoryConfig {
        HistoryConfig {
            raw_days,
            minute_days,
            received_days,
            ..HistoryConfig::default()
        }
    }

    #[tokio::test]
    async fn pruning_deletes_raw_readings_older_than_raw_days_but_keeps_their_minutes() {
        let (_dir, store) = store().await;
        let old = NOW - Duration::days(100);
        let recent = NOW - Duration::days(1);
        // More than two chunks of old readings, in arrival order, then
        // recent ones, then an old one that arrived late from a backlog.
        let many: Vec<Reading> = (0..2 * PRUNE_CHUNK + 500)
            .map(|i| level(old + Duration::milliseconds(i * 100), 2.0))
            .collect();
        store.ingest(&telemetry(1, many), old).await.unwrap();
        store
            .ingest(&telemetry(2, vec![level(recent, 3.0)]), recent)
            .await
            .unwrap();
        let mut backlog = Telemetry::new("gw-1", 3, vec![level(old, 1.0)]);
        backlog.replay = true;
        store
            .ingest(&Message::Telemetry(backlog), recent)
            .await
            .unwrap();

        let pruned = store.prune(&keep(90, 0, 0), NOW).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                readings: 2 * PRUNE_CHUNK as u64 + 501,
                minutes: 0,
                received: 0
            }
        );
        assert_eq!(
            store.history("gw-1", "tank.level").await.unwrap(),
            vec![(recent, Some(3.0))]
        );
        let minutes = minutes_of(&store, "tank.level").await;
        assert_eq!(
            minutes.iter().map(|m| m.n).sum::<u64>(),
            2 * PRUNE_CHUNK as u64 + 502
        );
        assert_eq!(minutes[0].min, Some(1.0), "the backlog's minute too");
        assert_eq!(
            store.prune(&keep(90, 0, 0), NOW).await.unwrap(),
            Pruned::default(),
            "nothing left to prune"
        );
    }

    #[tokio::test]
    async fn pruning_deletes_minutes_older_than_minute_days_point_by_point() {
        let (_dir, store) = store().await;
        let cutoff = NOW - Duration::days(1830);
        let minutes_before = |m: i64| cutoff - Duration::minutes(m);
        let mut readings = Vec::new();
        for point in ["a.level", "b.level", "c.level"] {
            // Old minutes far apart: more than one chunk of time per point.
            for m in [3 * PRUNE_CHUNK, PRUNE_CHUNK + 1, 1] {
                readings.push(reading(point, minutes_before(m), Some(1.0), Quality::Good));
            }
            readings.push(reading(point, cutoff, Some(2.0), Quality::Good));
            readings.push(reading(
                point,
                NOW - Duration::days(1),
                Some(3.0),
                Quality::Good,
            ));
        }
        store.ingest(&telemetry(1, readings), NOW).await.unwrap();
        let pruned = store.prune(&keep(0, 1830, 0), NOW).await.unwrap();
        assert_eq!(pruned.minutes, 9);
        assert_eq!(pruned.readings, 0, "raw readings kept forever");
        for point in ["a.level", "b.level", "c.level"] {
            let kept: Vec<_> = minutes_of(&store, point)
                .await
                .into_iter()
                .map(|m| (m.start, m.avg))
                .collect();
            assert_eq!(
                kept,
                vec![(cutoff, Some(2.0)), (NOW - Duration::days(1), Some(3.0))]
            );
            assert_eq!(store.history("gw-1", point).await.unwrap().len(), 5);
        }
    }

    #[tokio::test]
    async fn pruning_forgets_messages_received_before_received_days() {
        let (_dir, store) = store().await;
        let m = |seq| telemetry(seq, vec![level(NOW - Duration::days(40), 2.0)]);
        store.ingest(&m(1), NOW - Duration::days(40)).await.unwrap();
        store.ingest(&m(2), NOW - Duration::days(1)).await.unwrap();
        let pruned = store.prune(&keep(0, 0, 30), NOW).await.unwrap();
        assert_eq!(pruned.received, 1);
        assert_eq!(
            store
                .received_seqs("gw-1", Stream::Telemetry)
                .await
                .unwrap(),
            vec![2]
        );
        assert_eq!(store.ingest(&m(2), NOW).await.unwrap(), Outcome::Duplicate);
        assert_eq!(
            store.ingest(&m(1), NOW).await.unwrap(),
            Outcome::Stored,
            "the trade-off: forgotten, so stored again"
        );
        assert_eq!(
            store.sequences(Some("gw-1")).await.unwrap()[0].highest,
            2,
            "gap accounting is kept"
        );
    }

    #[tokio::test]
    async fn a_series_is_raw_up_to_a_day_minutes_up_to_a_week_hours_beyond() {
        let (_dir, store) = store().await;
        let old = NOW - Duration::days(100);
        let recent = NOW - Duration::hours(2);
        store
            .ingest(&telemetry(1, vec![level(old, 1.0)]), old)
            .await
            .unwrap();
        store
            .ingest(&telemetry(2, vec![level(recent, 2.0)]), recent)
            .await
            .unwrap();
        let series = async |span: Duration, resolution| {
            store
                .series("gw-1", "tank.level", NOW - span, NOW, resolution)
                .await
                .unwrap()
        };
        let day = series(Duration::days(1), None).await;
        assert_eq!(
            day,
            Series::Raw(vec![RawReading {
                ts: recent,
                value: Some(2.0),
                quality: Quality::Good
            }])
        );
        assert_eq!(
            series(Duration::days(7), None).await.resolution(),
            Resolution::Minute
        );
        assert_eq!(
            series(Duration::days(8), None).await.resolution(),
            Resolution::Hour
        );
        assert_eq!(
            series(Duration::days(1), Some(Resolution::Hour))
                .await
                .resolution(),
            Resolution::Hour
        );

        // A day long ago, before and after its raw readings are pruned.
        let long_ago = async || {
            store
                .series(
                    "gw-1",
                    "tank.level",
                    old - Duration::hours(1),
                    old + Duration::hours(23),
                    None,
                )
                .await
                .unwrap()
        };
        assert_eq!(long_ago().await.resolution(), Resolution::Raw);
        store.prune(&keep(90, 0, 0), NOW).await.unwrap();
        assert_eq!(
            long_ago().await,
            Series::Minute(vec![at(old, 1, 0, Some((1.0, 1.0, 1.0)))])
        );
    }

    #[test]
    fn history_config_defaults_and_what_is_rejected() {
        let config: HistoryConfig = toml::from_str("").unwrap();
        assert_eq!(config, HistoryConfig::default());
        assert_eq!(
            (config.raw_days, config.minute_days, config.received_days),
            (90, 1830, 30)
        );
        assert!(config.validate().is_ok());
        assert!(keep(0, 0, 0).validate().is_ok(), "everything forever");
        let err = keep(90, 30, 30).validate().unwrap_err();
        assert!(err.contains("history.minute_days"), "{err}");
        assert!(keep(0, 1830, 30).validate().is_err());
        let err = HistoryConfig {
            prune_every_secs: 0,
            ..HistoryConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("history.prune_every_secs"), "{err}");
        assert!(toml::from_str::<HistoryConfig>("raw_dayz = 3").is_err());
    }
}
