//! Storage through sqlx on SQLite (WAL): deduplicated messages, reading
//! history, the latest value of every point, gateway status and verdicts.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use riser_contract::{Message, Quality, Stream};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;

use crate::rules::{PointValue, Reason, Status, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored verdict is not readable: {0}")]
    Corrupt(String),
}

/// Whether a message was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Duplicate,
}

/// The latest reading of a point with its unit and exception code.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub point: String,
    pub value: PointValue,
    pub unit: Option<String>,
    pub exception: Option<u8>,
}

/// A stored verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVerdict {
    pub status: Status,
    pub reasons: Vec<Reason>,
    pub updated_at: OffsetDateTime,
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (or creates) the database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A message is acknowledged to the broker only after its commit;
            // FULL makes that commit survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores one validated message in one transaction; a (gateway, stream,
    /// seq) seen before is a duplicate and changes nothing.
    pub async fn ingest(
        &self,
        message: &Message,
        now: OffsetDateTime,
    ) -> Result<Outcome, StoreError> {
        let now_ms = to_ms(now);
        let gateway = message.gateway();
        let mut tx = self.pool.begin().await?;
        let seq = match message {
            Message::Telemetry(m) => Some((Stream::Telemetry, m.seq)),
            Message::Events(m) => Some((Stream::Events, m.seq)),
            Message::Status(_) => None,
        };
        if let Some((stream, seq)) = seq {
            let inserted = sqlx::query(
                "INSERT INTO received (gateway, stream, seq, received_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(gateway)
            .bind(stream.as_str())
            .bind(seq as i64)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(Outcome::Duplicate);
            }
        }
        match message {
            Message::Telemetry(m) => {
                for r in &m.readings {
                    let ts = to_ms(r.ts);
                    sqlx::query(
                        "INSERT INTO readings (gateway, point, ts_ms, value, unit, quality, exception, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .bind(gateway)
                    .bind(&r.point)
                    .bind(ts)
                    .bind(r.value)
                    .bind(&r.unit)
                    .bind(r.quality.as_str())
                    .bind(r.exception.map(i64::from))
                    .bind(m.seq as i64)
                    .execute(&mut *tx)
                    .await?;
                    let latest = Latest {
                        point: r.point.clone(),
                        value: PointValue {
                            value: r.value,
                            quality: r.quality,
                            ts: r.ts,
                        },
                        unit: r.unit.clone(),
                        exception: r.exception,
                    };
                    upsert_latest(&mut tx, gateway, &latest).await?;
                }
                touch_gateway(&mut tx, gateway, now_ms).await?;
            }
            Message::Events(m) => {
                for e in &m.events {
                    sqlx::query(
                        "INSERT INTO events (gateway, seq, kind, point, ts_ms, value, quality)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .bind(gateway)
                    .bind(m.seq as i64)
                    .bind(e.kind.as_str())
                    .bind(&e.point)
                    .bind(to_ms(e.ts))
                    .bind(e.value)
                    .bind(e.quality.as_str())
                    .execute(&mut *tx)
                    .await?;
                    // Alarm and fault states travel only as events: they
                    // are the point's latest value too.
                    let latest = Latest {
                        point: e.point.clone(),
                        value: PointValue {
                            value: e.value,
                            quality: e.quality,
                            ts: e.ts,
                        },
                        unit: None,
                        exception: None,
                    };
                    upsert_latest(&mut tx, gateway, &latest).await?;
                }
                touch_gateway(&mut tx, gateway, now_ms).await?;
            }
            Message::Status(s) => {
                sqlx::query(
                    "INSERT INTO gateways (id, online, status_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO UPDATE SET online = excluded.online,
                       status_ms = excluded.status_ms, last_seen_ms = excluded.last_seen_ms",
                )
                .bind(gateway)
                .bind(s.online)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Outcome::Stored)
    }

    /// The latest reading of every point of `gateway`.
    pub async fn latest(&self, gateway: &str) -> Result<Vec<Latest>, StoreError> {
        let rows = sqlx::query(
            "SELECT point, ts_ms, value, unit, quality, exception FROM point_latest
             WHERE gateway = ?1 ORDER BY point",
        )
        .bind(gateway)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Latest {
                point: row.get("point"),
                value: PointValue {
                    value: row.get("value"),
                    // A quality this build does not know is not trustworthy.
                    quality: Quality::parse(row.get("quality")).unwrap_or(Quality::SensorFault),
                    ts: from_ms(row.get("ts_ms")),
                },
                unit: row.get("unit"),
                exception: row.get::<Option<i64>, _>("exception").map(|e| e as u8),
            })
            .collect())
    }

    /// `Some(online)` from the gateway's last status message, `None` if it never sent one.
    pub async fn gateway_online(&self, gateway: &str) -> Result<Option<bool>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT online FROM gateways WHERE id = ?1")
                .bind(gateway)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Saves a building's verdict; `updated_at` moves only when the status or
    /// the reasons change.
    pub async fn save_verdict(
        &self,
        building: &str,
        verdict: &Verdict,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let reasons = serde_json::to_string(&verdict.reasons)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO building_state (building_id, status, reasons, updated_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (building_id) DO UPDATE SET status = excluded.status,
               reasons = excluded.reasons, updated_ms = excluded.updated_ms
             WHERE building_state.status <> excluded.status OR building_state.reasons <> excluded.reasons",
        )
        .bind(building)
        .bind(verdict.status.as_str())
        .bind(reasons)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every stored verdict by building id.
    pub async fn verdicts(&self) -> Result<HashMap<String, StoredVerdict>, StoreError> {
        let rows =
            sqlx::query("SELECT building_id, status, reasons, updated_ms FROM building_state")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|row| {
                let status: String = row.get("status");
                let reasons: String = row.get("reasons");
                Ok((
                    row.get("building_id"),
                    StoredVerdict {
                        status: Status::parse(&status)
                            .ok_or_else(|| StoreError::Corrupt(status.clone()))?,
                        reasons: serde_json::from_str(&reasons)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        updated_at: from_ms(row.get("updated_ms")),
                    },
                ))
            })
            .collect()
    }

    /// Sequence numbers received from `gateway` on `stream`, ascending.
    pub async fn received_seqs(
        &self,
        gateway: &str,
        stream: Stream,
    ) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM received WHERE gateway = ?1 AND stream = ?2 ORDER BY seq",
        )
        .bind(gateway)
        .bind(stream.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }

    /// Stored readings of one point, oldest first.
    pub async fn history(
        &self,
        gateway: &str,
        point: &str,
    ) -> Result<Vec<(OffsetDateTime, Option<f64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, value FROM readings WHERE gateway = ?1 AND point = ?2 ORDER BY ts_ms",
        )
        .bind(gateway)
        .bind(point)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (from_ms(r.get("ts_ms")), r.get("value")))
            .collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The newest reading of a point wins, by reading time, not arrival.
async fn upsert_latest(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    gateway: &str,
    latest: &Latest,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO point_latest (gateway, point, ts_ms, value, unit, quality, exception)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (gateway, point) DO UPDATE SET
           ts_ms = excluded.ts_ms, value = excluded.value,
           unit = COALESCE(excluded.unit, point_latest.unit),
           quality = excluded.quality, exception = excluded.exception
         WHERE excluded.ts_ms >= point_latest.ts_ms",
    )
    .bind(gateway)
    .bind(&latest.point)
    .bind(to_ms(latest.value.ts))
    .bind(latest.value.value)
    .bind(&latest.unit)
    .bind(latest.value.quality.as_str())
    .bind(latest.exception.map(i64::from))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn touch_gateway(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    gateway: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gateways (id, online, status_ms, last_seen_ms) VALUES (?1, 1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
    )
    .bind(gateway)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
