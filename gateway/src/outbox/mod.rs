//! The on-disk outbox: every reading and event is written here (SQLite, WAL,
//! `synchronous=FULL`, group commit) before anything is sent, and deleted
//! only after the broker acknowledged it (PUBACK).
//!
//! Two tables hold what is unsent:
//! - `staged`: readings as written, one row per group commit. Nothing is
//!   numbered yet, so rows can be thinned when the disk limit is reached.
//! - `outbox`: numbered messages (per-stream `seq`, in this outbox's
//!   `epoch`), ready to send or in flight. Events go here at once; the
//!   uplink seals staged readings into telemetry messages when it has room,
//!   the live ones (written since it connected) before the backlog, which is
//!   flagged `replay`.

mod thin;
mod writer;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use riser_contract::{Event, OutboxHealth, Reading, Stream, Telemetry, VERSION};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::{Notify, mpsc, oneshot};

pub use thin::thin;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("outbox holds a row of unknown stream `{0}`")]
    UnknownStream(String),
    #[error("outbox database failed its integrity check: {0}")]
    Corrupt(String),
    #[error("cannot set the corrupt outbox aside: {0}")]
    SetAside(std::io::Error),
    #[error("outbox write failed: {0}")]
    Write(String),
    #[error("outbox holds an unreadable staged row {id}: {error}")]
    Staged { id: i64, error: String },
}

impl OutboxError {
    /// Whether the database file itself is damaged (not a busy or full disk).
    fn is_corruption(&self) -> bool {
        let database = match self {
            OutboxError::Corrupt(_) => return true,
            OutboxError::Database(e) => e,
            OutboxError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => e,
            _ => return false,
        };
        match database {
            sqlx::Error::Database(e) => e
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                // SQLITE_CORRUPT and SQLITE_NOTADB, with their extended codes.
                .is_some_and(|c| matches!(c & 0xff, 11 | 26)),
            _ => false,
        }
    }
}

/// How the outbox keeps within its disk budget and forms messages.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// Gateway id written into every message.
    pub gateway: String,
    /// Bytes of database pages in use at most; above it routine readings
    /// are thinned, then the oldest dropped. Events are always kept.
    pub max_bytes: u64,
    /// When thinning, keep one reading per point (and quality) per this.
    pub thin_interval: Duration,
    /// Most readings in one telemetry message.
    pub max_readings_per_message: usize,
    /// zlib-compress telemetry payloads.
    pub compress: bool,
}

impl OutboxOptions {
    pub fn new(gateway: impl Into<String>) -> Self {
        Self {
            gateway: gateway.into(),
            max_bytes: 512 * 1024 * 1024,
            thin_interval: Duration::from_secs(300),
            max_readings_per_message: 500,
            compress: true,
        }
    }
}

/// A message waiting for its PUBACK.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub stream: Stream,
    pub seq: u64,
    pub payload: Vec<u8>,
    /// Readings in it (telemetry).
    pub readings: u64,
}

/// Sending priority: lower goes first. Events (alarms, faults) overtake
/// telemetry; live telemetry overtakes the backlog.
const PRIORITY_EVENTS: i64 = 0;
const PRIORITY_LIVE: i64 = 2;
const PRIORITY_BACKLOG: i64 = 3;

fn parse_stream(s: &str) -> Result<Stream, OutboxError> {
    match s {
        "events" => Ok(Stream::Events),
        "telemetry" => Ok(Stream::Telemetry),
        "status" => Ok(Stream::Status),
        _ => Err(OutboxError::UnknownStream(s.to_owned())),
    }
}

/// What the uplink sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealed {
    pub messages: usize,
    pub readings: usize,
    /// Sealed from the backlog (flagged `replay`).
    pub replay: bool,
}

struct Shared {
    options: OutboxOptions,
    epoch: u32,
    appended: Notify,
    thinned: AtomicU64,
    dropped: AtomicU64,
    path: PathBuf,
}

/// Handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pool: SqlitePool,
    shared: Arc<Shared>,
    writer: mpsc::Sender<writer::Request>,
}

impl Outbox {
    /// Opens (or creates) the outbox database at `path`. A database that is
    /// corrupt is renamed to `{path}.corrupt-{unix time}` with an ERROR and
    /// a fresh one created in its place (a new epoch), so a damaged file
    /// never keeps the gateway from running.
    pub async fn open(path: &Path, options: OutboxOptions) -> Result<Self, OutboxError> {
        match Self::try_open(path, options.clone()).await {
            Err(error) if error.is_corruption() => {
                let aside = set_aside(path).map_err(OutboxError::SetAside)?;
                tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %error, "outbox database is corrupt; set aside, starting a fresh one");
                Self::try_open(path, options).await
            }
            other => other,
        }
    }

    async fn try_open(path: &Path, options: OutboxOptions) -> Result<Self, OutboxError> {
        let connect = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed write survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // A small page cache: the outbox is a queue, read once, on a
            // board with little memory.
            .pragma("cache_size", "-512");
        let pool = SqlitePoolOptions::new()
            // One connection: writes, seals and acknowledgements take turns
            // (SQLite has one writer anyway); each connection costs a
            // thread and a page cache.
            .max_connections(1)
            .connect_with(connect)
            .await?;
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&pool)
            .await?;
        if check != "ok" {
            pool.close().await;
            return Err(OutboxError::Corrupt(check));
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ('epoch', ?1) ON CONFLICT DO NOTHING",
        )
        .bind(i64::from(new_epoch()))
        .execute(&pool)
        .await?;
        let counter = |name: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT value FROM counters WHERE name = ?1")
                    .bind(name)
                    .fetch_optional(&pool)
                    .await
                    .map(|v| v.unwrap_or(0))
            }
        };
        let shared = Arc::new(Shared {
            epoch: counter("epoch").await? as u32,
            thinned: AtomicU64::new(counter("thinned").await? as u64),
            dropped: AtomicU64::new(counter("dropped").await? as u64),
            appended: Notify::new(),
            options,
            path: path.to_owned(),
        });
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer::run(pool.clone(), shared.clone(), rx));
        Ok(Self {
            pool,
            shared,
            writer: tx,
        })
    }

    /// Most readings in one telemetry message.
    pub fn max_readings_per_message(&self) -> usize {
        self.shared.options.max_readings_per_message
    }

    /// This outbox's sequence space, sent with every message.
    pub fn epoch(&self) -> u32 {
        self.shared.epoch
    }

    /// Writes readings (one poll cycle); when this returns they are on
    /// disk. Writes arriving together share one commit. `held` is the boot
    /// id when the readings' times are boot-clock times, taken before the
    /// wall clock was trusted (see [`Outbox::restamp`]).
    pub async fn append_readings(
        &self,
        readings: Vec<Reading>,
        held: Option<String>,
    ) -> Result<(), OutboxError> {
        if readings.is_empty() {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        self.request(writer::Request::Readings {
            readings,
            held,
            reply,
        })
        .await?;
        done.await
            .map_err(|_| OutboxError::Write("writer stopped".into()))?
            .map(|_| ())
    }

    /// Writes one events message and returns its sequence number; when this
    /// returns it is on disk, first in the sending order.
    pub async fn append_events(&self, events: Vec<Event>) -> Result<u64, OutboxError> {
        let (reply, done) = oneshot::channel();
        self.request(writer::Request::Events { events, reply })
            .await?;
        done.await
            .map_err(|_| OutboxError::Write("writer stopped".into()))?
    }

    async fn request(&self, request: writer::Request) -> Result<(), OutboxError> {
        self.writer
            .send(request)
            .await
            .map_err(|_| OutboxError::Write("writer stopped".into()))
    }

    /// The next messages to send, highest priority first, oldest first,
    /// skipping those in `skip` (already in flight).
    pub async fn next(&self, limit: usize, skip: &HashSet<i64>) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(
            "SELECT id, stream, seq, payload, readings FROM outbox ORDER BY priority, id LIMIT ?1",
        )
        .bind((limit + skip.len()) as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(limit);
        for row in rows {
            let id: i64 = row.get("id");
            if skip.contains(&id) {
                continue;
            }
            out.push(Entry {
                id,
                stream: parse_stream(row.get("stream"))?,
                seq: row.get::<i64, _>("seq") as u64,
                payload: row.get("payload"),
                readings: row.get::<i64, _>("readings") as u64,
            });
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// The first staged row id not yet written: rows from it on are "live"
    /// for a session that connects now.
    pub async fn staged_mark(&self) -> Result<i64, OutboxError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM staged")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0) + 1)
    }

    /// The first outbox id not yet written: messages below it were sealed
    /// before a session that connects now, so they are resent as `replay`.
    pub async fn outbox_mark(&self) -> Result<i64, OutboxError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0) + 1)
    }

    /// Readings staged (unsealed, not held) from `live_from` on.
    pub async fn live_readings(&self, live_from: i64) -> Result<u64, OutboxError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(readings), 0) FROM staged WHERE held = 0 AND id >= ?1",
        )
        .bind(live_from)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// Numbers staged readings into about `messages` telemetry messages:
    /// live rows (id ≥ `live_from`, only when `include_live`) first, else
    /// the backlog, flagged `replay`. Held rows wait for the clock.
    pub async fn seal(
        &self,
        live_from: i64,
        include_live: bool,
        messages: usize,
    ) -> Result<Sealed, OutboxError> {
        let per_message = self.shared.options.max_readings_per_message.max(1);
        let want = (messages.max(1) * per_message) as i64;
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut replay = false;
        let mut rows = Vec::new();
        if include_live {
            rows = take_rows(&mut tx, "id >= ?1", live_from, want).await?;
        }
        if rows.is_empty() {
            rows = take_rows(&mut tx, "id < ?1", live_from, want).await?;
            replay = true;
        }
        if rows.is_empty() {
            return Ok(Sealed::default());
        }
        let mut readings = Vec::new();
        for (id, body) in &rows {
            let staged: Telemetry =
                serde_json::from_slice(body).map_err(|e| OutboxError::Staged {
                    id: *id,
                    error: e.to_string(),
                })?;
            readings.extend(staged.readings);
        }
        let mut sealed = Sealed {
            replay,
            ..Sealed::default()
        };
        let priority = if replay {
            PRIORITY_BACKLOG
        } else {
            PRIORITY_LIVE
        };
        for chunk in readings.chunks(per_message) {
            let seq = next_seq(&mut tx, Stream::Telemetry).await?;
            let message = Telemetry {
                v: VERSION,
                gateway: self.shared.options.gateway.clone(),
                epoch: self.shared.epoch,
                seq,
                replay,
                readings: chunk.to_vec(),
            };
            let payload = self.telemetry_payload(&message);
            let first_ms = first_ms(chunk.iter().map(|r| r.ts));
            sqlx::query(
                "INSERT INTO outbox (priority, stream, seq, payload, readings, first_ms)
                 VALUES (?1, 'telemetry', ?2, ?3, ?4, ?5)",
            )
            .bind(priority)
            .bind(seq as i64)
            .bind(payload)
            .bind(chunk.len() as i64)
            .bind(first_ms)
            .execute(&mut *tx)
            .await?;
            sealed.messages += 1;
            sealed.readings += chunk.len();
        }
        delete_ids(&mut tx, "staged", rows.iter().map(|(id, _)| *id)).await?;
        tx.commit().await?;
        Ok(sealed)
    }

    /// The payload of a telemetry message as configured (compressed or not).
    pub fn telemetry_payload(&self, message: &Telemetry) -> Vec<u8> {
        let json = riser_contract::encode(message);
        if self.shared.options.compress {
            riser_contract::compress(&json)
        } else {
            json
        }
    }

    /// Forgets messages the broker acknowledged, in one commit.
    pub async fn acknowledge(&self, ids: &[i64]) -> Result<(), OutboxError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        delete_ids(&mut tx, "outbox", ids.iter().copied()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a message the broker can never take out of the queue, keeping
    /// it on disk with the reason.
    pub async fn dead_letter(&self, id: i64, reason: &str) -> Result<(), OutboxError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dead_letter (id, stream, seq, payload, reason)
             SELECT id, stream, seq, payload, ?2 FROM outbox WHERE id = ?1",
        )
        .bind(id)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Messages moved to the dead-letter table.
    pub async fn dead_letters(&self) -> Result<u64, OutboxError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letter")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// Messages and staged rows waiting to be sent or acknowledged; 0 when
    /// everything written has been acknowledged.
    pub async fn depth(&self) -> Result<u64, OutboxError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM staged)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// The buffer's state for health and metrics; `now_ms` is Unix ms.
    pub async fn health(&self, now_ms: i64) -> Result<(OutboxHealth, u64), OutboxError> {
        let row = sqlx::query(
            "SELECT
               (SELECT COALESCE(SUM(readings), 0) FROM staged WHERE held = 0)
                 + (SELECT COALESCE(SUM(readings), 0) FROM outbox WHERE stream = 'telemetry') AS readings,
               (SELECT COUNT(*) FROM outbox WHERE stream = 'events') AS events,
               (SELECT COALESCE(SUM(readings), 0) FROM staged WHERE held = 1) AS held,
               MIN((SELECT MIN(first_ms) FROM staged WHERE held = 0),
                   (SELECT MIN(first_ms) FROM outbox)) AS oldest",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = row.get("oldest");
        let mut conn = self.pool.acquire().await?;
        let bytes = used_bytes(&mut conn).await?;
        let health = OutboxHealth {
            readings: row.get::<i64, _>("readings") as u64,
            events: row.get::<i64, _>("events") as u64,
            oldest_age_secs: oldest.map(|ms| ((now_ms - ms).max(0) / 1000) as u64),
            bytes,
            limit_bytes: self.shared.options.max_bytes,
            thinned: self.shared.thinned.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        };
        Ok((health, row.get::<i64, _>("held") as u64))
    }

    /// Gives readings held for the clock their wall-clock times: a reading
    /// taken at boot-clock `t` of boot `boot_id` happened at
    /// `now_wall_ms - (now_boot_ms - t)`, flagged `restamped`. Readings of
    /// another boot cannot be placed: they are released flagged `unsynced`.
    /// Returns the number of readings released.
    pub async fn restamp(
        &self,
        boot_id: &str,
        now_wall_ms: i64,
        now_boot_ms: i64,
    ) -> Result<u64, OutboxError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows = sqlx::query("SELECT id, boot_id, body FROM staged WHERE held = 1 ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let mut released = 0;
        for row in rows {
            let id: i64 = row.get("id");
            let same_boot = row.get::<Option<String>, _>("boot_id").as_deref() == Some(boot_id);
            let mut staged: Telemetry = serde_json::from_slice(row.get::<&[u8], _>("body"))
                .map_err(|e| OutboxError::Staged {
                    id,
                    error: e.to_string(),
                })?;
            for r in &mut staged.readings {
                if same_boot {
                    let taken = riser_contract::unix_ms(r.ts);
                    let wall = now_wall_ms - (now_boot_ms - taken);
                    r.ts = riser_contract::from_unix_ms(wall).unwrap_or(r.ts);
                    r.clock = Some(riser_contract::ClockFlag::Restamped);
                } else {
                    r.clock = Some(riser_contract::ClockFlag::Unsynced);
                }
            }
            released += staged.readings.len() as u64;
            sqlx::query("UPDATE staged SET held = 0, first_ms = ?2, body = ?3 WHERE id = ?1")
                .bind(id)
                .bind(first_ms(staged.readings.iter().map(|r| r.ts)).unwrap_or(0))
                .bind(riser_contract::encode(&staged))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if released > 0 {
            self.shared.appended.notify_one();
        }
        Ok(released)
    }

    /// The last sequence number given out on `stream` (0 if none yet).
    pub async fn last_seq(&self, stream: Stream) -> Result<u64, OutboxError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT last FROM sequence WHERE stream = ?1")
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Resolves after the next write (or at once if one happened since the
    /// last call).
    pub async fn appended(&self) {
        self.shared.appended.notified().await;
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Staged, not-held rows matching `filter` (on `?1`), oldest first, until
/// they hold at least `want` readings.
async fn take_rows(
    conn: &mut SqliteConnection,
    filter: &str,
    mark: i64,
    want: i64,
) -> Result<Vec<(i64, Vec<u8>)>, OutboxError> {
    let sql = format!(
        "SELECT id, readings, body FROM staged WHERE held = 0 AND {filter} ORDER BY id LIMIT 256"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(mark)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::new();
    let mut total = 0;
    for row in rows {
        total += row.get::<i64, _>("readings");
        out.push((row.get("id"), row.get("body")));
        if total >= want {
            break;
        }
    }
    Ok(out)
}

async fn next_seq(conn: &mut SqliteConnection, stream: Stream) -> Result<u64, OutboxError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO sequence (stream, last) VALUES (?1, 1)
         ON CONFLICT (stream) DO UPDATE SET last = last + 1
         RETURNING last",
    )
    .bind(stream.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq as u64)
}

/// Deletes rows by id from `table` (a constant), in chunks.
async fn delete_ids(
    conn: &mut SqliteConnection,
    table: &str,
    ids: impl Iterator<Item = i64>,
) -> Result<(), OutboxError> {
    let ids: Vec<i64> = ids.collect();
    for chunk in ids.chunks(500) {
        let mut sql = format!("DELETE FROM {table} WHERE id IN (");
        for (i, id) in chunk.iter().enumerate() {
            let _ = write!(sql, "{}{id}", if i == 0 { "" } else { "," });
        }
        sql.push(')');
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Unix ms of the earliest of `times`.
fn first_ms(times: impl Iterator<Item = time::OffsetDateTime>) -> Option<i64> {
    times.map(riser_contract::unix_ms).min()
}

/// Adds `n` to a persistent counter (`thinned`, `dropped`) within `conn`'s
/// transaction; the caller adds it to the in-memory copy after the commit.
async fn add_to_counter(
    conn: &mut SqliteConnection,
    name: &'static str,
    n: u64,
) -> Result<(), OutboxError> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )
    .bind(name)
    .bind(n as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Bytes of database pages holding data (free pages are reused, not
/// returned to the file system).
async fn used_bytes(conn: &mut SqliteConnection) -> Result<u64, OutboxError> {
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut *conn)
        .await?;
    let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut *conn)
        .await?;
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Renames a damaged database (and its WAL and shared-memory files) out of
/// the way; returns the new name.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", aside.display()))?;
        }
    }
    Ok(aside)
}

/// A random, non-zero epoch for a new outbox.
fn new_epoch() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    // Below 2^31, so it is the same number in every JSON reader.
    (hasher.finish() as u32 & 0x7fff_ffff).max(1)
}

#[cfg(test)]
mod tests;
