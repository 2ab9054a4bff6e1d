//! Storage through sqlx on SQLite (WAL, the default) or PostgreSQL, chosen
//! by the database URL (`sqlite://…` or `postgres://…`) and driven through
//! sqlx's Any driver with one dialect of SQL both accept: deduplicated
//! messages, sequence gaps, reading history, the latest value of every
//! point, gateway status and health, and verdicts. Migrations per back end
//! live in `migrations/sqlite/` and `migrations/postgres/`.

mod history;
mod judging;
mod placement;
mod rows;

pub use history::{
    Bucket, HistoryConfig, PRUNE_CHUNK, Pruned, RawReading, Resolution, Series, prune_periodically,
};
pub use judging::{Judging, Locked, Maintenance};
pub use placement::{FUTURE_TOLERANCE, Placed, ToLatest, place};

use std::collections::HashMap;
use std::path::Path;

use riser_contract::{ClockFlag, Message, Stream};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Row};
use time::OffsetDateTime;

use crate::rules::{PointValue, Reason, Status};
use placement::{clock_str, parse_clock};
use rows::{RowShape, split_double};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("database URL must start with sqlite:// or postgres://, not `{0}`")]
    Url(String),
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
    /// Its `ts` is the arrival time when the gateway's clock was not trusted.
    pub value: PointValue,
    pub unit: Option<String>,
    pub exception: Option<u8>,
    /// The gateway's clock flag on this value.
    pub clock: Option<ClockFlag>,
    /// The gateway's own time, when `value.ts` is not it.
    pub gateway_ts: Option<OffsetDateTime>,
}

/// One sequence space of one gateway's stream: a new one starts when the
/// gateway's outbox is created afresh.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceState {
    pub gateway: String,
    pub stream: Stream,
    pub epoch: u32,
    /// Highest sequence number received.
    pub highest: u64,
    /// Distinct sequence numbers received.
    pub received: u64,
    pub first_received: OffsetDateTime,
    pub last_received: OffsetDateTime,
}

impl SequenceState {
    /// Messages below `highest` not received (or not yet: a backlog arrives
    /// behind the newest messages).
    pub fn missing(&self) -> u64 {
        self.highest.saturating_sub(self.received)
    }
}

/// What the cloud knows of a gateway from its status messages.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayState {
    pub id: String,
    /// From its last status message; a gateway that only sent data counts as online.
    pub online: bool,
    /// When anything from it last arrived.
    pub last_seen: OffsetDateTime,
    pub software: Option<String>,
    /// Its latest health report, as the JSON of the contract's `Health`.
    pub health: Option<serde_json::Value>,
    pub health_at: Option<OffsetDateTime>,
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

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite writers take turns here, first come first served. SQLite's
    /// own busy handler retries with sleeps, so a writer can lose the race
    /// to a stream of back-to-back telemetry commits for seconds; an alarm
    /// must wait for one commit at most. PostgreSQL locks rows instead.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens (or creates) the SQLite database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to `url` (`sqlite://path?mode=rwc` or
    /// `postgres://user@host/db`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)
            .ok_or_else(|| StoreError::Url(url.split('@').next_back().unwrap_or("").into()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // A message is acknowledged to the broker only after
                        // its commit; FULL makes that commit survive power loss.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            writer: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The writer turn on SQLite; none needed on PostgreSQL.
    pub(crate) async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Rows per multi-row statement: 500 rows of 13 parameters stay
    /// below both back ends' limits (SQLite 32 766, PostgreSQL 65 535);
    /// binding is linear in the parameters (see [`rows`]).
    const ROWS_PER_INSERT: usize = 500;

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores one validated message in one transaction; a (gateway, stream,
    /// epoch, seq) seen before is a duplicate and changes nothing. `now` is
    /// its arrival.
    pub async fn ingest(
        &self,
        message: &Message,
        now: OffsetDateTime,
    ) -> Result<Outcome, StoreError> {
        Ok(self
            .ingest_batch(std::slice::from_ref(message), now)
            .await?[0])
    }

    /// Stores validated messages in one transaction (one commit, one fsync
    /// on SQLite), with one outcome per message in order. Readings go in
    /// multi-row inserts; each point's latest value is written once.
    pub async fn ingest_batch(
        &self,
        messages: &[Message],
        now: OffsetDateTime,
    ) -> Result<Vec<Outcome>, StoreError> {
        let now_ms = to_ms(now);
        let _turn = self.turn().await;
        let mut tx = self.pool.begin().await?;
        let mut outcomes = vec![Outcome::Stored; messages.len()];
        let mut rows: Vec<ReadingRow> = Vec::new();
        let mut latest: HashMap<(&str, &str), (Latest, ToLatest)> = HashMap::new();
        let mut seen: Vec<&str> = Vec::new();
        // Per sequence space: messages received, highest number.
        let mut spaces: HashMap<(&str, Stream, u32), (i64, u64)> = HashMap::new();
        let mut statuses: Vec<(&str, &riser_contract::Status)> = Vec::new();
        // Rows several writers update (sequence spaces, minutes, latest
        // values, gateways) are written last, each table in key order, so
        // on PostgreSQL a node holds their locks only for the end of its
        // transaction, never waits on another crosswise, and the bulk of
        // two nodes' work on one gateway's messages runs side by side.
        let mut order: Vec<usize> = (0..messages.len()).collect();
        order.sort_by_key(|&i| (messages[i].gateway(), message_stream(&messages[i])));
        for i in order {
            let message = &messages[i];
            let gateway = message.gateway();
            let numbered = match message {
                Message::Telemetry(m) => Some((Stream::Telemetry, m.epoch, m.seq)),
                Message::Events(m) => Some((Stream::Events, m.epoch, m.seq)),
                Message::Status(_) => None,
            };
            if let Some((stream, epoch, seq)) = numbered {
                if !remember(&mut tx, gateway, stream, epoch, seq, now_ms).await? {
                    outcomes[i] = Outcome::Duplicate;
                    continue;
                }
                let space = spaces.entry((gateway, stream, epoch)).or_insert((0, seq));
                space.0 += 1;
                space.1 = space.1.max(seq);
            }
            match message {
                Message::Telemetry(m) => {
                    for r in &m.readings {
                        let placed = place(r.ts, r.clock, m.replay, now);
                        rows.push(ReadingRow {
                            gateway,
                            point: &r.point,
                            ts_ms: to_ms(placed.ts),
                            value: r.value,
                            unit: r.unit.as_deref(),
                            quality: r.quality.as_str(),
                            exception: r.exception.map(i64::from),
                            seq: m.seq as i64,
                            epoch: i64::from(m.epoch),
                            replay: i64::from(m.replay),
                            clock: r.clock.map(clock_str),
                            gateway_ts_ms: placed.gateway_ts.map(to_ms),
                        });
                        keep_latest(
                            &mut latest,
                            gateway,
                            &r.point,
                            Latest {
                                point: r.point.clone(),
                                value: PointValue {
                                    value: r.value,
                                    quality: r.quality,
                                    ts: placed.ts,
                                },
                                unit: r.unit.clone(),
                                exception: r.exception,
                                clock: r.clock,
                                gateway_ts: placed.gateway_ts,
                            },
                            placed.latest,
                        );
                    }
                    seen.push(gateway);
                }
                Message::Events(m) => {
                    for e in &m.events {
                        let placed = place(e.ts, e.clock, m.replay, now);
                        sqlx::query(
                            "INSERT INTO events (gateway, seq, kind, point, ts_ms, value, quality,
                               epoch, replay, clock, gateway_ts_ms)
                             VALUES ($1, $2, $3, $4, $5, CASE WHEN $12 <> 0 THEN $6 END, $7, $8, $9, $10, $11)",
                        )
                        .bind(gateway)
                        .bind(m.seq as i64)
                        .bind(e.kind.as_str())
                        .bind(&e.point)
                        .bind(to_ms(placed.ts))
                        .bind(split_double(e.value).0)
                        .bind(e.quality.as_str())
                        .bind(i64::from(m.epoch))
                        .bind(i64::from(m.replay))
                        .bind(e.clock.map(clock_str))
                        .bind(placed.gateway_ts.map(to_ms))
                        .bind(split_double(e.value).1)
                        .execute(&mut *tx)
                        .await?;
                        // Alarm and fault states travel only as events: they
                        // are the point's latest value too.
                        keep_latest(
                            &mut latest,
                            gateway,
                            &e.point,
                            Latest {
                                point: e.point.clone(),
                                value: PointValue {
                                    value: e.value,
                                    quality: e.quality,
                                    ts: placed.ts,
                                },
                                unit: None,
                                exception: None,
                                clock: e.clock,
                                gateway_ts: placed.gateway_ts,
                            },
                            placed.latest,
                        );
                    }
                    seen.push(gateway);
                }
                Message::Status(s) => statuses.push((gateway, s)),
            }
        }
        let per_insert = Self::ROWS_PER_INSERT;
        for chunk in rows.chunks(per_insert) {
            insert_readings(&mut tx, self.backend, chunk).await?;
        }
        // The rows other writers update too, from here to the commit.
        let mut spaces: Vec<_> = spaces.into_iter().collect();
        spaces.sort_unstable_by_key(|((gateway, stream, epoch), _)| {
            (*gateway, stream.as_str(), *epoch)
        });
        for ((gateway, stream, epoch), (count, highest)) in spaces {
            count_received(&mut tx, gateway, stream, epoch, count, highest, now_ms).await?;
        }
        history::add_minutes(&mut tx, self.backend, &rows, per_insert).await?;
        let mut latest: Vec<_> = latest.into_iter().collect();
        latest.sort_by(|a, b| a.0.cmp(&b.0));
        for rule in [ToLatest::IfNewer, ToLatest::IfAbsent] {
            let rows: Vec<(&str, &Latest)> = latest
                .iter()
                .filter(|(_, (_, r))| *r == rule)
                .map(|((gateway, _), (value, _))| (*gateway, value))
                .collect();
            for chunk in rows.chunks(per_insert) {
                upsert_latest(&mut tx, self.backend, chunk, rule).await?;
            }
        }
        // Statuses in arrival order within a gateway (the sort is stable).
        statuses.sort_by_key(|(gateway, _)| *gateway);
        seen.sort_unstable();
        seen.dedup();
        let mut seen = seen.into_iter().peekable();
        for (gateway, s) in statuses {
            while let Some(earlier) = seen.next_if(|g| *g < gateway) {
                touch_gateway(&mut tx, earlier, now_ms).await?;
            }
            let health = s
                .health
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // The last-will (and any status without them) keeps the
            // stored health and software version.
            sqlx::query(
                "INSERT INTO gateways (id, online, status_ms, last_seen_ms, software, health, health_ms)
                 VALUES ($1, $2, $3, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET online = excluded.online,
                   status_ms = excluded.status_ms, last_seen_ms = excluded.last_seen_ms,
                   software = COALESCE(excluded.software, gateways.software),
                   health = COALESCE(excluded.health, gateways.health),
                   health_ms = COALESCE(excluded.health_ms, gateways.health_ms)",
            )
            .bind(gateway)
            .bind(i64::from(s.online))
            .bind(now_ms)
            .bind(&s.software)
            .bind(health.as_deref())
            .bind(health.is_some().then_some(now_ms))
            .execute(&mut *tx)
            .await?;
        }
        for gateway in seen {
            touch_gateway(&mut tx, gateway, now_ms).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The latest reading of every point of `gateway`.
    pub async fn latest(&self, gateway: &str) -> Result<Vec<Latest>, StoreError> {
        let rows = sqlx::query(
            "SELECT point, ts_ms, value, unit, quality, exception, clock, gateway_ts_ms
             FROM point_latest WHERE gateway = $1 ORDER BY point",
        )
        .bind(gateway)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(judging::latest_row).collect())
    }

    /// `Some(online)` from the gateway's last status message, `None` if it never sent one.
    pub async fn gateway_online(&self, gateway: &str) -> Result<Option<bool>, StoreError> {
        let online: Option<i64> = sqlx::query_scalar("SELECT online FROM gateways WHERE id = $1")
            .bind(gateway)
            .fetch_optional(&self.pool)
            .await?;
        Ok(online.map(|o| o != 0))
    }

    /// Every stored verdict by building id.
    pub async fn verdicts(&self) -> Result<HashMap<String, StoredVerdict>, StoreError> {
        let rows = sqlx::query(
            "SELECT building_id, status, reasons, updated_ms FROM building_state WHERE status <> ''",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.get("building_id"), stored_verdict(row)?)))
            .collect()
    }

    /// One building's stored verdict, if it was judged.
    pub async fn verdict(&self, building: &str) -> Result<Option<StoredVerdict>, StoreError> {
        let row = sqlx::query(
            "SELECT status, reasons, updated_ms FROM building_state
             WHERE building_id = $1 AND status <> ''",
        )
        .bind(building)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_verdict).transpose()
    }

    /// Sequence numbers received from `gateway` on `stream`, ascending by
    /// epoch, then by number (each epoch starts again at 1).
    pub async fn received_seqs(
        &self,
        gateway: &str,
        stream: Stream,
    ) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM received WHERE gateway = $1 AND stream = $2 ORDER BY epoch, seq",
        )
        .bind(gateway)
        .bind(stream.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }

    /// Every sequence space, of one gateway or of all, by gateway, stream and
    /// first arrival.
    pub async fn sequences(&self, gateway: Option<&str>) -> Result<Vec<SequenceState>, StoreError> {
        let rows = sqlx::query(
            "SELECT gateway, stream, epoch, highest, received, first_ms, last_ms FROM sequences
             WHERE CAST($1 AS TEXT) IS NULL OR gateway = $1 ORDER BY gateway, stream, first_ms, epoch",
        )
        .bind(gateway)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let stream: String = row.get("stream");
                Ok(SequenceState {
                    gateway: row.get("gateway"),
                    stream: parse_stream(&stream).ok_or(StoreError::Corrupt(stream))?,
                    epoch: row.get::<i64, _>("epoch") as u32,
                    highest: row.get::<i64, _>("highest") as u64,
                    received: row.get::<i64, _>("received") as u64,
                    first_received: from_ms(row.get("first_ms")),
                    last_received: from_ms(row.get("last_ms")),
                })
            })
            .collect()
    }

    /// Every gateway that sent anything, by id.
    pub async fn gateways(&self) -> Result<Vec<GatewayState>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, online, last_seen_ms, software, health, health_ms
             FROM gateways ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(gateway_state).collect())
    }

    /// One gateway, if it ever sent anything.
    pub async fn gateway(&self, id: &str) -> Result<Option<GatewayState>, StoreError> {
        let row = sqlx::query(
            "SELECT id, online, last_seen_ms, software, health, health_ms
             FROM gateways WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(gateway_state))
    }

    /// Stored readings of one point, oldest first.
    pub async fn history(
        &self,
        gateway: &str,
        point: &str,
    ) -> Result<Vec<(OffsetDateTime, Option<f64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, value FROM readings WHERE gateway = $1 AND point = $2 ORDER BY ts_ms",
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

fn gateway_state(row: &sqlx::any::AnyRow) -> GatewayState {
    let id: String = row.get("id");
    let health = row.get::<Option<&str>, _>("health").and_then(|text| {
        serde_json::from_str(text)
            .inspect_err(|e| {
                tracing::warn!(gateway_id = %id, error = %e, "stored health is not JSON; not shown");
            })
            .ok()
    });
    GatewayState {
        online: row.get::<i64, _>("online") != 0,
        last_seen: from_ms(row.get("last_seen_ms")),
        software: row.get("software"),
        health,
        health_at: row.get::<Option<i64>, _>("health_ms").map(from_ms),
        id,
    }
}

fn message_stream(message: &Message) -> &'static str {
    match message {
        Message::Telemetry(_) => Stream::Telemetry.as_str(),
        Message::Events(_) => Stream::Events.as_str(),
        Message::Status(_) => Stream::Status.as_str(),
    }
}

fn parse_stream(s: &str) -> Option<Stream> {
    [Stream::Telemetry, Stream::Events, Stream::Status]
        .into_iter()
        .find(|stream| stream.as_str() == s)
}

/// Records a numbered message as received; `false` if it was before.
async fn remember(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    gateway: &str,
    stream: Stream,
    epoch: u32,
    seq: u64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO received (gateway, stream, epoch, seq, received_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(gateway)
    .bind(stream.as_str())
    .bind(i64::from(epoch))
    .bind(seq as i64)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Adds `count` new messages, the highest numbered `highest`, to a
/// sequence space's count and highest number, so a late message fills the
/// gap it left.
async fn count_received(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    gateway: &str,
    stream: Stream,
    epoch: u32,
    count: i64,
    highest: u64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sequences (gateway, stream, epoch, highest, received, first_ms, last_ms)
         VALUES ($1, $2, $3, $4, $6, $5, $5)
         ON CONFLICT (gateway, stream, epoch) DO UPDATE SET
           highest = CASE WHEN excluded.highest > sequences.highest
                     THEN excluded.highest ELSE sequences.highest END,
           received = sequences.received + excluded.received, last_ms = excluded.last_ms",
    )
    .bind(gateway)
    .bind(stream.as_str())
    .bind(i64::from(epoch))
    .bind(highest as i64)
    .bind(now_ms)
    .bind(count)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The newest value of a point wins, by its placed time, not arrival order;
/// one of unknown time only fills an empty point. One statement for many
/// points (each point at most once).
async fn upsert_latest(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[(&str, &Latest)],
    rule: ToLatest,
) -> Result<(), sqlx::Error> {
    const SHAPE: RowShape = RowShape {
        params: 10,
        columns: &[
            "{1}",
            "{2}",
            "{3}",
            "CASE WHEN {10} <> 0 THEN {4} END",
            "{5}",
            "{6}",
            "{7}",
            "{8}",
            "{9}",
        ],
    };
    let mut sql = String::from(
        "INSERT INTO point_latest (gateway, point, ts_ms, value, unit, quality, exception,
           clock, gateway_ts_ms) ",
    );
    SHAPE.write(&mut sql, backend, rows.len());
    sql.push_str(match rule {
        ToLatest::IfNewer => {
            " ON CONFLICT (gateway, point) DO UPDATE SET
               ts_ms = excluded.ts_ms, value = excluded.value,
               unit = COALESCE(excluded.unit, point_latest.unit),
               quality = excluded.quality, exception = excluded.exception,
               clock = excluded.clock, gateway_ts_ms = excluded.gateway_ts_ms
             WHERE excluded.ts_ms >= point_latest.ts_ms"
        }
        ToLatest::IfAbsent => " ON CONFLICT (gateway, point) DO NOTHING",
    });
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (gateway, latest) in rows {
        query = query
            .bind(*gateway)
            .bind(latest.point.as_str())
            .bind(to_ms(latest.value.ts))
            .bind(split_double(latest.value.value).0)
            .bind(latest.unit.as_deref())
            .bind(latest.value.quality.as_str())
            .bind(latest.exception.map(i64::from))
            .bind(latest.clock.map(clock_str))
            .bind(latest.gateway_ts.map(to_ms))
            .bind(split_double(latest.value.value).1);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

struct ReadingRow<'a> {
    gateway: &'a str,
    point: &'a str,
    ts_ms: i64,
    value: Option<f64>,
    unit: Option<&'a str>,
    quality: &'static str,
    exception: Option<i64>,
    seq: i64,
    epoch: i64,
    replay: i64,
    clock: Option<&'static str>,
    gateway_ts_ms: Option<i64>,
}

async fn insert_readings(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[ReadingRow<'_>],
) -> Result<(), sqlx::Error> {
    const SHAPE: RowShape = RowShape {
        params: 13,
        columns: &[
            "{1}",
            "{2}",
            "{3}",
            "CASE WHEN {13} <> 0 THEN {4} END",
            "{5}",
            "{6}",
            "{7}",
            "{8}",
            "{9}",
            "{10}",
            "{11}",
            "{12}",
        ],
    };
    let mut sql = String::from(
        "INSERT INTO readings (gateway, point, ts_ms, value, unit, quality, exception,
           seq, epoch, replay, clock, gateway_ts_ms) ",
    );
    SHAPE.write(&mut sql, backend, rows.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        query = query
            .bind(r.gateway)
            .bind(r.point)
            .bind(r.ts_ms)
            .bind(split_double(r.value).0)
            .bind(r.unit)
            .bind(r.quality)
            .bind(r.exception)
            .bind(r.seq)
            .bind(r.epoch)
            .bind(r.replay)
            .bind(r.clock)
            .bind(r.gateway_ts_ms)
            .bind(split_double(r.value).1);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Keeps, per point, the value that `upsert_latest` would end with: the
/// newest by placed time among those that may replace; one that may only
/// fill an empty point is kept only if nothing else is.
fn keep_latest<'a>(
    latest: &mut HashMap<(&'a str, &'a str), (Latest, ToLatest)>,
    gateway: &'a str,
    point: &'a str,
    value: Latest,
    rule: ToLatest,
) {
    match latest.get(&(gateway, point)) {
        Some((_, ToLatest::IfNewer)) if rule == ToLatest::IfAbsent => {}
        Some((kept, ToLatest::IfNewer)) if kept.value.ts > value.value.ts => {}
        _ => {
            latest.insert((gateway, point), (value, rule));
        }
    }
}
async fn touch_gateway(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    gateway: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gateways (id, online, status_ms, last_seen_ms) VALUES ($1, 1, $2, $2)
         ON CONFLICT (id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
    )
    .bind(gateway)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A store for one test: a fresh PostgreSQL database when
/// `RISER_TEST_DATABASE_URL` names a server (`postgres://user@host:port`;
/// `scripts/test` runs the suite once more that way), else SQLite in `dir`.
#[cfg(test)]
pub(crate) async fn test_store(dir: &Path) -> Store {
    match std::env::var("RISER_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            use sqlx::Connection;
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!(
                "riser_test_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                .await
                .expect("the test PostgreSQL server answers");
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .await
                .unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            admin.close().await.unwrap();
            Store::connect(&format!("{server}/{name}")).await.unwrap()
        }
        _ => Store::open(&dir.join("ingest.db")).await.unwrap(),
    }
}

#[cfg(test)]
mod tests;

fn stored_verdict(row: &sqlx::any::AnyRow) -> Result<StoredVerdict, StoreError> {
    let status: String = row.get("status");
    let reasons: String = row.get("reasons");
    Ok(StoredVerdict {
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt(status.clone()))?,
        reasons: serde_json::from_str(&reasons).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        updated_at: from_ms(row.get("updated_ms")),
    })
}
