//! The durable backlog: one SQLite row per enqueued message, its readings
//! as line protocol, deleted only after InfluxDB took them. Rows InfluxDB
//! refuses as invalid move to `refused`, kept for an operator.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS backlog (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    points INTEGER NOT NULL,
    lines TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY,
    points INTEGER NOT NULL,
    lines TEXT NOT NULL,
    error TEXT NOT NULL,
    refused_at_ms INTEGER NOT NULL
);
";

/// One enqueued message.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub points: u32,
    pub lines: String,
}

#[derive(Clone)]
pub struct Backlog {
    pool: SqlitePool,
}

impl Backlog {
    /// Opens or creates the backlog at `path`; returns it with the points
    /// and rows waiting in it.
    pub async fn open(path: &Path) -> Result<(Self, u64, u64), sqlx::Error> {
        let connect = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an enqueued row survives power loss, since the MQTT
            // message it came from is acknowledged right after.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // Two: the consumer appends while the sender reads.
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let (points, rows): (i64, i64) =
            sqlx::query_as("SELECT COALESCE(SUM(points), 0), COUNT(*) FROM backlog")
                .fetch_one(&pool)
                .await?;
        Ok((Self { pool }, points as u64, rows as u64))
    }

    /// Appends one message; on disk when this returns.
    pub async fn append(&self, points: u32, lines: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO backlog (points, lines) VALUES (?1, ?2)")
            .bind(i64::from(points))
            .bind(lines)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The oldest rows, at most `max_rows`, as many as fit in `max_points`
    /// (at least one, however large).
    pub async fn oldest(
        &self,
        max_points: usize,
        max_rows: usize,
    ) -> Result<Vec<Entry>, sqlx::Error> {
        // Every row holds at least one point.
        let limit = max_rows.min(max_points).max(1);
        let mut rows = sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT id, points, lines FROM backlog ORDER BY id LIMIT ?1",
        )
        .bind(limit as i64)
        .fetch(&self.pool);
        let mut batch = Vec::new();
        let mut points = 0usize;
        while batch.len() < max_rows
            && let Some((id, n, lines)) = rows.try_next().await?
        {
            let n = n as u32;
            if !batch.is_empty() && points + n as usize > max_points {
                break;
            }
            points += n as usize;
            batch.push(Entry {
                id,
                points: n,
                lines,
            });
        }
        Ok(batch)
    }

    /// Deletes rows `first..=last` (sent).
    pub async fn remove(&self, first: i64, last: i64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM backlog WHERE id BETWEEN ?1 AND ?2")
            .bind(first)
            .bind(last)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves one row to `refused` with the server's reason.
    pub async fn refuse(&self, entry: &Entry, error: &str, now_ms: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR REPLACE INTO refused (id, points, lines, error, refused_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(entry.id)
        .bind(i64::from(entry.points))
        .bind(&entry.lines)
        .bind(error)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM backlog WHERE id = ?1")
            .bind(entry.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Rows set aside as refused: (points, lines, error), oldest first.
    pub async fn refused(&self) -> Result<Vec<(u32, String, String)>, sqlx::Error> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT points, lines, error FROM refused ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(p, l, e)| (p as u32, l, e)).collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_come_back_oldest_first_in_batches_of_whole_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let (backlog, points, rows) = Backlog::open(&path).await.unwrap();
        assert_eq!((points, rows), (0, 0));
        for (n, text) in [(3, "a"), (3, "b"), (10, "c")] {
            backlog.append(n, text).await.unwrap();
        }
        let lines = |b: Vec<Entry>| b.into_iter().map(|e| e.lines).collect::<Vec<_>>();
        assert_eq!(
            lines(backlog.oldest(6, usize::MAX).await.unwrap()),
            ["a", "b"]
        );
        assert_eq!(lines(backlog.oldest(5, usize::MAX).await.unwrap()), ["a"]);
        assert_eq!(lines(backlog.oldest(100, 1).await.unwrap()), ["a"]);
        let first = backlog.oldest(6, usize::MAX).await.unwrap();
        backlog.remove(first[0].id, first[1].id).await.unwrap();
        let big = backlog.oldest(5, usize::MAX).await.unwrap();
        assert_eq!(
            lines(big.clone()),
            ["c"],
            "a message larger than a batch still goes"
        );
        backlog.refuse(&big[0], "bad", 1).await.unwrap();
        assert!(backlog.oldest(5, usize::MAX).await.unwrap().is_empty());
        backlog.append(1, "d").await.unwrap();
        backlog.close().await;

        let (backlog, points, rows) = Backlog::open(&path).await.unwrap();
        assert_eq!((points, rows), (1, 1));
        assert_eq!(
            backlog.refused().await.unwrap(),
            [(10, "c".into(), "bad".into())]
        );
    }
}
