//! The on-disk outbox: every message is written here (SQLite, WAL,
//! `synchronous=FULL`) before it is sent, and deleted only after the broker
//! acknowledged it (PUBACK).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use riser_contract::Stream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("outbox holds a row of unknown stream `{0}`")]
    UnknownStream(String),
}

/// A message waiting for its PUBACK.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub stream: Stream,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Sending priority: lower goes first. Events (alarms, faults) overtake
/// telemetry.
fn priority(stream: Stream) -> i64 {
    match stream {
        Stream::Events => 0,
        Stream::Status => 1,
        Stream::Telemetry => 2,
    }
}

/// Handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pool: SqlitePool,
    appended: Arc<Notify>,
}

impl Outbox {
    /// Opens (or creates) the outbox database at `path`.
    pub async fn open(path: &Path) -> Result<Self, OutboxError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed append survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // A small page cache: the outbox is a queue, read once, on a
            // board with little memory.
            .pragma("cache_size", "-512");
        let pool = SqlitePoolOptions::new()
            // One connection: appends, reads and acknowledgements take turns,
            // which a gateway's rate allows; each connection costs a thread
            // and a page cache.
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            appended: Arc::new(Notify::new()),
        })
    }

    /// Appends one message; `build` receives the message's sequence number
    /// (per stream, from 1, never reused) and returns the payload. When this
    /// returns, the message is on disk.
    pub async fn append(
        &self,
        stream: Stream,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        let mut tx = self.pool.begin().await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO sequence (stream, last) VALUES (?1, 1)
             ON CONFLICT (stream) DO UPDATE SET last = last + 1
             RETURNING last",
        )
        .bind(stream.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let seq = seq as u64;
        sqlx::query("INSERT INTO outbox (priority, stream, seq, payload) VALUES (?1, ?2, ?3, ?4)")
            .bind(priority(stream))
            .bind(stream.as_str())
            .bind(seq as i64)
            .bind(build(seq))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.appended.notify_one();
        Ok(seq)
    }

    /// The next messages to send, highest priority first, oldest first,
    /// skipping those in `skip` (already in flight).
    pub async fn next(&self, limit: usize, skip: &HashSet<i64>) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(
            "SELECT id, stream, seq, payload FROM outbox ORDER BY priority, id LIMIT ?1",
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
            let stream: String = row.get("stream");
            let stream = match stream.as_str() {
                "events" => Stream::Events,
                "telemetry" => Stream::Telemetry,
                "status" => Stream::Status,
                _ => return Err(OutboxError::UnknownStream(stream)),
            };
            out.push(Entry {
                id,
                stream,
                seq: row.get::<i64, _>("seq") as u64,
                payload: row.get("payload"),
            });
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Forgets a message the broker acknowledged.
    pub async fn acknowledge(&self, id: i64) -> Result<(), OutboxError> {
        sqlx::query("DELETE FROM outbox WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await?;
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

    /// Messages waiting to be sent or acknowledged.
    pub async fn depth(&self) -> Result<u64, OutboxError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// The last sequence number given out on `stream` (0 if none yet).
    pub async fn last_seq(&self, stream: Stream) -> Result<u64, OutboxError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT last FROM sequence WHERE stream = ?1")
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Resolves after the next append (or at once if one happened since the
    /// last call).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn outbox() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
        (dir, outbox)
    }

    #[tokio::test]
    async fn sequences_are_per_stream_and_contiguous() {
        let (_dir, outbox) = outbox().await;
        for expected in 1..=3 {
            assert_eq!(
                outbox.append(Stream::Telemetry, |_| vec![]).await.unwrap(),
                expected
            );
        }
        assert_eq!(outbox.append(Stream::Events, |_| vec![]).await.unwrap(), 1);
        assert_eq!(outbox.last_seq(Stream::Telemetry).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn events_overtake_older_telemetry() {
        let (_dir, outbox) = outbox().await;
        outbox
            .append(Stream::Telemetry, |s| format!("t{s}").into_bytes())
            .await
            .unwrap();
        outbox
            .append(Stream::Telemetry, |s| format!("t{s}").into_bytes())
            .await
            .unwrap();
        outbox
            .append(Stream::Events, |s| format!("e{s}").into_bytes())
            .await
            .unwrap();
        let next = outbox.next(10, &HashSet::new()).await.unwrap();
        let order: Vec<_> = next
            .iter()
            .map(|e| String::from_utf8(e.payload.clone()).unwrap())
            .collect();
        assert_eq!(order, ["e1", "t1", "t2"]);
    }

    #[tokio::test]
    async fn only_acknowledged_messages_leave_and_sequences_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let outbox = Outbox::open(&path).await.unwrap();
        outbox.append(Stream::Telemetry, |_| vec![1]).await.unwrap();
        outbox.append(Stream::Telemetry, |_| vec![2]).await.unwrap();
        let first = outbox.next(1, &HashSet::new()).await.unwrap().remove(0);
        let skip = HashSet::from([first.id]);
        assert_eq!(outbox.next(10, &skip).await.unwrap()[0].seq, 2);
        outbox.acknowledge(first.id).await.unwrap();
        outbox.close().await;

        let reopened = Outbox::open(&path).await.unwrap();
        assert_eq!(reopened.depth().await.unwrap(), 1);
        assert_eq!(
            reopened
                .append(Stream::Telemetry, |_| vec![])
                .await
                .unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn a_dead_letter_leaves_the_queue_but_stays_on_disk() {
        let (_dir, outbox) = outbox().await;
        outbox
            .append(Stream::Telemetry, |_| vec![0; 10])
            .await
            .unwrap();
        outbox.append(Stream::Telemetry, |_| vec![1]).await.unwrap();
        let first = outbox.next(1, &HashSet::new()).await.unwrap().remove(0);
        outbox.dead_letter(first.id, "too large").await.unwrap();
        assert_eq!(outbox.next(10, &HashSet::new()).await.unwrap()[0].seq, 2);
        let kept: (i64, String) = sqlx::query_as("SELECT seq, reason FROM dead_letter")
            .fetch_one(&outbox.pool)
            .await
            .unwrap();
        assert_eq!(kept, (1, "too large".to_owned()));
    }
}
