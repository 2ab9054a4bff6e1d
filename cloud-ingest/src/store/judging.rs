//! Judging under a database-level guard, so several ingest nodes on one
//! PostgreSQL (and the consumers and periodic judge of one node) never save
//! a verdict computed from older state over a newer one: a [`Judging`]
//! transaction locks each building's `building_state` row
//! (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the store's single
//! writer turn), reads the latest values *after* taking the lock, and saves
//! the verdict, the rules' memory ([`RuleState`], as JSON) and the hazard
//! changes in the same commit. Buildings are locked in id order, so two
//! judges never wait on each other crosswise.
//!
//! Maintenance windows live here too: they are set through the API and
//! read by the judge.

use sqlx::Row;
use time::OffsetDateTime;

use super::{Backend, Latest, Store, StoreError, from_ms, parse_clock, to_ms};
use crate::rules::{Link, PointValue, RuleState, Verdict};

/// A transaction that judges buildings. Dropped without [`Judging::commit`],
/// it changes nothing.
pub struct Judging<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// A building's row as locked: its stored verdict and rule state.
#[derive(Debug, Default)]
pub struct Locked {
    pub state: RuleState,
    status: Option<String>,
    reasons: Option<String>,
}

/// A maintenance window (维保模式).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Maintenance {
    pub id: i64,
    pub building_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Who set it.
    pub by: String,
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Ended early, by whom.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub ended_by: Option<String>,
}

impl Maintenance {
    /// In force at `now`.
    pub fn active(&self, now: OffsetDateTime) -> bool {
        self.starts_at <= now && now < self.until && self.ended_at.is_none()
    }
}

impl Store {
    /// The pool, for modules that keep their own tables (hazards).
    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// Starts judging. On SQLite this takes the writer turn for the whole
    /// transaction; keep it to a few hundred buildings.
    pub async fn begin_judging(&self) -> Result<Judging<'_>, StoreError> {
        let turn = self.turn().await;
        let tx = self.pool.begin().await?;
        Ok(Judging {
            tx,
            backend: self.backend,
            _turn: turn,
        })
    }

    /// Sets a maintenance window for `building` from `starts` to `until`.
    pub async fn add_maintenance(
        &self,
        building: &str,
        starts: OffsetDateTime,
        until: OffsetDateTime,
        by: &str,
        note: &str,
        now: OffsetDateTime,
    ) -> Result<Maintenance, StoreError> {
        let _turn = self.turn().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO maintenance (building_id, starts_ms, until_ms, by_whom, note, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(building)
        .bind(to_ms(starts))
        .bind(to_ms(until))
        .bind(by)
        .bind(note)
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(Maintenance {
            id,
            building_id: building.to_owned(),
            starts_at: from_ms(to_ms(starts)),
            until: from_ms(to_ms(until)),
            by: by.to_owned(),
            note: note.to_owned(),
            created_at: from_ms(to_ms(now)),
            ended_at: None,
            ended_by: None,
        })
    }

    /// Ends every window of `building` in force or to come; how many.
    pub async fn end_maintenance(
        &self,
        building: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let _turn = self.turn().await;
        Ok(sqlx::query(
            "UPDATE maintenance SET ended_ms = $2, ended_by = $3
             WHERE building_id = $1 AND ended_ms IS NULL AND until_ms > $2",
        )
        .bind(building)
        .bind(to_ms(now))
        .bind(by)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The windows of `building`, newest first (at most `limit`).
    pub async fn maintenance(
        &self,
        building: &str,
        limit: i64,
    ) -> Result<Vec<Maintenance>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, building_id, starts_ms, until_ms, by_whom, note, created_ms, ended_ms, ended_by
             FROM maintenance WHERE building_id = $1 ORDER BY starts_ms DESC, id DESC LIMIT $2",
        )
        .bind(building)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(maintenance_row).collect())
    }

    /// A building's rule state as last saved (default if never judged).
    pub async fn rule_state(&self, building: &str) -> Result<RuleState, StoreError> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT rule_state FROM building_state WHERE building_id = $1")
                .bind(building)
                .fetch_optional(&self.pool)
                .await?;
        Ok(parse_state(building, text.flatten().as_deref()))
    }
}

impl Judging<'_> {
    /// Locks `building`'s row (creating it if new) until commit and returns
    /// what was saved with it.
    pub async fn lock(&mut self, building: &str) -> Result<Locked, StoreError> {
        sqlx::query(
            "INSERT INTO building_state (building_id, status, reasons, updated_ms)
             VALUES ($1, '', '', 0) ON CONFLICT (building_id) DO NOTHING",
        )
        .bind(building)
        .execute(&mut *self.tx)
        .await?;
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT status, reasons, rule_state FROM building_state WHERE building_id = $1 FOR UPDATE"
            }
            Backend::Sqlite => {
                "SELECT status, reasons, rule_state FROM building_state WHERE building_id = $1"
            }
        };
        let row = sqlx::query(sql)
            .bind(building)
            .fetch_one(&mut *self.tx)
            .await?;
        let status: String = row.get("status");
        let reasons: String = row.get("reasons");
        let state: Option<String> = row.get("rule_state");
        Ok(Locked {
            state: parse_state(building, state.as_deref()),
            status: (!status.is_empty()).then_some(status),
            reasons: (!reasons.is_empty()).then_some(reasons),
        })
    }

    /// The latest reading of every point of `gateway`, as of now.
    pub async fn latest(&mut self, gateway: &str) -> Result<Vec<Latest>, StoreError> {
        let rows = sqlx::query(
            "SELECT point, ts_ms, value, unit, quality, exception, clock, gateway_ts_ms
             FROM point_latest WHERE gateway = $1 ORDER BY point",
        )
        .bind(gateway)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.iter().map(latest_row).collect())
    }

    /// The gateway's link as stored: online from its last status message,
    /// and when anything from it last arrived.
    pub async fn link(&mut self, gateway: &str) -> Result<Link, StoreError> {
        let row = sqlx::query("SELECT online, last_seen_ms FROM gateways WHERE id = $1")
            .bind(gateway)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map_or(Link::default(), |row| Link {
            online: Some(row.get::<i64, _>("online") != 0),
            last_seen: Some(from_ms(row.get("last_seen_ms"))),
        }))
    }

    /// The end of the maintenance window in force at `now`, if any (the
    /// latest-ending of overlapping ones).
    pub async fn maintenance_until(
        &mut self,
        building: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(until_ms) FROM maintenance
             WHERE building_id = $1 AND ended_ms IS NULL AND starts_ms <= $2 AND until_ms > $2",
        )
        .bind(building)
        .bind(to_ms(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(until.map(from_ms))
    }

    /// Saves the verdict and rule state of a locked building; `true` when
    /// the status or the reasons changed (then `updated_at` moves and the
    /// change goes to `verdict_history`).
    pub async fn save(
        &mut self,
        building: &str,
        locked: &Locked,
        verdict: &Verdict,
        state: &RuleState,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let reasons = serde_json::to_string(&verdict.reasons)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let state = serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let changed = locked.status.as_deref() != Some(verdict.status.as_str())
            || locked.reasons.as_deref() != Some(reasons.as_str());
        let now_ms = to_ms(now);
        if changed {
            sqlx::query(
                "UPDATE building_state SET status = $2, reasons = $3, rule_state = $4, updated_ms = $5
                 WHERE building_id = $1",
            )
            .bind(building)
            .bind(verdict.status.as_str())
            .bind(&reasons)
            .bind(state)
            .bind(now_ms)
            .execute(&mut *self.tx)
            .await?;
            sqlx::query(
                "INSERT INTO verdict_history (building_id, at_ms, status, reasons) VALUES ($1, $2, $3, $4)",
            )
            .bind(building)
            .bind(now_ms)
            .bind(verdict.status.as_str())
            .bind(&reasons)
            .execute(&mut *self.tx)
            .await?;
        } else {
            sqlx::query("UPDATE building_state SET rule_state = $2 WHERE building_id = $1")
                .bind(building)
                .bind(state)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(changed)
    }

    /// The open transaction, for what is saved with a verdict (hazards).
    pub fn connection(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

fn parse_state(building: &str, text: Option<&str>) -> RuleState {
    let Some(text) = text else {
        return RuleState::default();
    };
    serde_json::from_str(text).unwrap_or_else(|error| {
        // An older or damaged state only makes conditions wait out their
        // duration again.
        tracing::warn!(building_id = %building, error = %error, "stored rule state is not readable; starting afresh");
        RuleState::default()
    })
}

pub(super) fn latest_row(row: &sqlx::any::AnyRow) -> Latest {
    Latest {
        point: row.get("point"),
        value: PointValue {
            value: row.get("value"),
            // A quality this build does not know is not trustworthy.
            quality: riser_contract::Quality::parse(row.get("quality"))
                .unwrap_or(riser_contract::Quality::SensorFault),
            ts: from_ms(row.get("ts_ms")),
        },
        unit: row.get("unit"),
        exception: row.get::<Option<i64>, _>("exception").map(|e| e as u8),
        clock: row.get::<Option<&str>, _>("clock").and_then(parse_clock),
        gateway_ts: row.get::<Option<i64>, _>("gateway_ts_ms").map(from_ms),
    }
}

fn maintenance_row(row: &sqlx::any::AnyRow) -> Maintenance {
    Maintenance {
        id: row.get("id"),
        building_id: row.get("building_id"),
        starts_at: from_ms(row.get("starts_ms")),
        until: from_ms(row.get("until_ms")),
        by: row.get("by_whom"),
        note: row.get("note"),
        created_at: from_ms(row.get("created_ms")),
        ended_at: row.get::<Option<i64>, _>("ended_ms").map(from_ms),
        ended_by: row.get("ended_by"),
    }
}
