//! The hazard tables (`hazards`, `hazard_transitions`) in the store's
//! database: the SQL of the lifecycle, one dialect for SQLite and
//! PostgreSQL. Writes outside the judging transaction take the store's
//! writer turn (SQLite) and change one item with one conditional `UPDATE`,
//! recording the transition only if a row changed.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::plan::{Change, Existing, escalations, plan};
use super::{
    Action, Escalation, Filter, Hazard, HazardError, HazardsConfig, SYSTEM, Severity, State,
    Transition, person, remark_text,
};
use crate::rules::{Code, Verdict};
use crate::store::{Store, StoreError, from_ms, to_ms};

impl From<sqlx::Error> for HazardError {
    fn from(error: sqlx::Error) -> Self {
        HazardError::Store(error.into())
    }
}

/// `SELECT` of every column of `hazards`, then `$rest`.
macro_rules! select_hazards {
    ($rest:literal) => {
        concat!(
            "SELECT id, building_id, code, point, severity, clause, quality, state, value, required,
               opened_ms, recorded_ms, ack_due_ms, deadline_ms, acknowledged_ms, acknowledged_by,
               resolved_ms, closed_ms, closed_by, closed_remark, escalation, escalated_ms,
               last_seen_ms, reopened
             FROM hazards ",
            $rest
        )
    };
}

fn code_name(code: Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_code(name: &str) -> Option<Code> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

fn point_of(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

fn corrupt(id: i64, what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("hazard {id}: unknown {what} `{value}`"))
}

fn hazard_row(row: &AnyRow) -> Result<Hazard, StoreError> {
    let id: i64 = row.get("id");
    let code: String = row.get("code");
    let severity: String = row.get("severity");
    let state: String = row.get("state");
    let time = |column: &str| row.get::<Option<i64>, _>(column).map(from_ms);
    Ok(Hazard {
        id,
        building_id: row.get("building_id"),
        code: parse_code(&code).ok_or_else(|| corrupt(id, "code", &code))?,
        point: point_of(row.get("point")),
        severity: Severity::parse(&severity).ok_or_else(|| corrupt(id, "severity", &severity))?,
        clause: row.get("clause"),
        quality: row
            .get::<Option<&str>, _>("quality")
            .and_then(riser_contract::Quality::parse),
        state: State::parse(&state).ok_or_else(|| corrupt(id, "state", &state))?,
        value: row.get("value"),
        required: row.get("required"),
        opened_at: from_ms(row.get("opened_ms")),
        recorded_at: from_ms(row.get("recorded_ms")),
        ack_due: from_ms(row.get("ack_due_ms")),
        deadline: from_ms(row.get("deadline_ms")),
        acknowledged_at: time("acknowledged_ms"),
        acknowledged_by: row.get("acknowledged_by"),
        resolved_at: time("resolved_ms"),
        closed_at: time("closed_ms"),
        closed_by: row.get("closed_by"),
        closed_remark: row.get("closed_remark"),
        escalation: row.get::<i64, _>("escalation").clamp(0, 2) as u8,
        escalated_at: time("escalated_ms"),
        last_seen_at: from_ms(row.get("last_seen_ms")),
        reopened: row.get::<i64, _>("reopened").clamp(0, i64::from(u32::MAX)) as u32,
    })
}

async fn record(
    conn: &mut AnyConnection,
    hazard: i64,
    at_ms: i64,
    action: Action,
    by: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO hazard_transitions (hazard_id, at_ms, action, by_whom, note)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hazard)
    .bind(at_ms)
    .bind(action.as_str())
    .bind(by)
    .bind(note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// See [`super::reconcile`]. Every `UPDATE` names the state it expects, so
/// a person's action committed meanwhile (PostgreSQL) is never overwritten;
/// what it skips, the next evaluation does.
pub(super) async fn reconcile(
    conn: &mut AnyConnection,
    building: &str,
    verdict: &Verdict,
    now: OffsetDateTime,
    config: &HazardsConfig,
) -> Result<usize, StoreError> {
    let rows = sqlx::query(
        "SELECT id, code, point, state, acknowledged_ms FROM hazards
         WHERE building_id = $1 AND state <> 'closed'",
    )
    .bind(building)
    .fetch_all(&mut *conn)
    .await?;
    let mut existing = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.get("id");
        let code: &str = row.get("code");
        let state: &str = row.get("state");
        match (parse_code(code), State::parse(state)) {
            (Some(code), Some(state)) => existing.push(Existing {
                id,
                code,
                point: point_of(row.get("point")),
                state,
                acknowledged: row.get::<Option<i64>, _>("acknowledged_ms").is_some(),
            }),
            // Written by a newer build: leave it to that build.
            _ => tracing::warn!(
                hazard_id = id,
                code,
                state,
                "hazard not understood; left as it is"
            ),
        }
    }
    let now_ms = to_ms(now);
    let mut transitions = 0;
    for change in plan(&existing, verdict) {
        match change {
            Change::Open(reason, severity) => {
                let opened_ms = reason.since.map_or(now_ms, |s| to_ms(s).min(now_ms));
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO hazards (building_id, code, point, severity, clause, quality, state,
                       value, required, opened_ms, recorded_ms, ack_due_ms, deadline_ms, last_seen_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11, $12, $10)
                     RETURNING id",
                )
                // Not cached: see `set_value`.
                .persistent(false)
                .bind(building)
                .bind(code_name(reason.code))
                .bind(reason.point.as_deref().unwrap_or(""))
                .bind(severity.as_str())
                .bind(reason.clause.as_deref())
                .bind(reason.quality.map(|q| q.as_str()))
                .bind(reason.value)
                .bind(reason.required)
                .bind(opened_ms)
                .bind(now_ms)
                .bind(now_ms.saturating_add(config.ack_within_ms(severity)))
                .bind(opened_ms.saturating_add(config.deadline_ms(severity)))
                .fetch_one(&mut *conn)
                .await?;
                record(conn, id, now_ms, Action::Opened, SYSTEM, "").await?;
                transitions += 1;
                tracing::debug!(hazard_id = id, building_id = %building, code = ?reason.code, severity = severity.as_str(), "hazard opened");
            }
            Change::Reopen { id, to } => {
                // Closed meanwhile: the next evaluation opens a new item.
                let reopened = sqlx::query(
                    "UPDATE hazards SET state = $2, resolved_ms = NULL, reopened = reopened + 1,
                       last_seen_ms = $3
                     WHERE id = $1 AND state = 'resolved'",
                )
                .bind(id)
                .bind(to.as_str())
                .bind(now_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if reopened == 1 {
                    record(conn, id, now_ms, Action::Reopened, SYSTEM, "").await?;
                    transitions += 1;
                    tracing::debug!(hazard_id = id, building_id = %building, "hazard reopened");
                }
            }
            Change::Seen { id, value } => set_value(conn, id, value, now_ms).await?,
            Change::Resolve { id } => {
                let resolved = sqlx::query(
                    "UPDATE hazards SET state = 'resolved', resolved_ms = $2
                     WHERE id = $1 AND state IN ('open', 'acknowledged')",
                )
                .bind(id)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if resolved == 1 {
                    record(conn, id, now_ms, Action::Resolved, SYSTEM, "").await?;
                    transitions += 1;
                    tracing::debug!(hazard_id = id, building_id = %building, "hazard resolved");
                }
            }
        }
    }
    Ok(transitions)
}

/// Records what the rules see of an active item. A NULL float is never
/// bound to a cached statement: sqlx 0.9's Any driver sends a NULL `f64`
/// to PostgreSQL as `float4`, and the statement prepared so then refuses
/// an 8-byte value ("incorrect binary data format").
async fn set_value(
    conn: &mut AnyConnection,
    id: i64,
    value: Option<f64>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let query = match value {
        Some(value) => sqlx::query(
            "UPDATE hazards SET value = $3, last_seen_ms = $2
             WHERE id = $1 AND state IN ('open', 'acknowledged')",
        )
        .bind(id)
        .bind(now_ms)
        .bind(value),
        None => sqlx::query(
            "UPDATE hazards SET value = NULL, last_seen_ms = $2
             WHERE id = $1 AND state IN ('open', 'acknowledged')",
        )
        .bind(id)
        .bind(now_ms),
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

/// See [`super::escalate`]; returns the steps taken here.
pub(super) async fn escalate(store: &Store, now: OffsetDateTime) -> Result<usize, StoreError> {
    let now_ms = to_ms(now);
    let rows = sqlx::query(
        "SELECT id, building_id, state, escalation, ack_due_ms, deadline_ms FROM hazards
         WHERE state IN ('open', 'acknowledged') AND escalation < 2
           AND (deadline_ms <= $1 OR (state = 'open' AND escalation < 1 AND ack_due_ms <= $1))
         ORDER BY id",
    )
    .bind(now_ms)
    .fetch_all(store.pool())
    .await?;
    let mut taken = 0;
    for row in &rows {
        let id: i64 = row.get("id");
        let Some(state) = State::parse(row.get("state")) else {
            continue;
        };
        let level = row.get::<i64, _>("escalation").clamp(0, 2) as u8;
        let (ack_due_ms, deadline_ms) = (row.get("ack_due_ms"), row.get("deadline_ms"));
        for step in escalations(state, level, ack_due_ms, deadline_ms, now_ms) {
            if escalate_one(store, id, step, now_ms).await? {
                taken += 1;
                let building: &str = row.get("building_id");
                tracing::info!(hazard_id = id, building_id = %building, level = step.level(), why = step.as_str(), "hazard escalated");
            }
        }
    }
    Ok(taken)
}

/// One step in its own transaction: `false` if another node (or a person)
/// got there first.
async fn escalate_one(
    store: &Store,
    id: i64,
    step: Escalation,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let sql = match step {
        Escalation::Unacknowledged => {
            "UPDATE hazards SET escalation = 1, escalated_ms = $2
             WHERE id = $1 AND escalation < 1 AND state = 'open' AND ack_due_ms <= $2"
        }
        Escalation::Overdue => {
            "UPDATE hazards SET escalation = 2, escalated_ms = $2
             WHERE id = $1 AND escalation < 2 AND state IN ('open', 'acknowledged')
               AND deadline_ms <= $2"
        }
    };
    let _turn = store.turn().await;
    let mut tx = store.pool().begin().await?;
    let updated = sqlx::query(sql)
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    record(
        &mut tx,
        id,
        now_ms,
        Action::Escalated,
        SYSTEM,
        step.as_str(),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One item.
pub async fn get(store: &Store, id: i64) -> Result<Option<Hazard>, StoreError> {
    sqlx::query(select_hazards!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(hazard_row)
        .transpose()
}

/// An item's transitions, oldest first.
pub async fn transitions(store: &Store, id: i64) -> Result<Vec<Transition>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, hazard_id, at_ms, action, by_whom, note FROM hazard_transitions
         WHERE hazard_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let action: &str = row.get("action");
            Ok(Transition {
                id: row.get("id"),
                hazard_id: row.get("hazard_id"),
                at: from_ms(row.get("at_ms")),
                action: Action::parse(action).ok_or_else(|| {
                    StoreError::Corrupt(format!("hazard {id}: unknown action `{action}`"))
                })?,
                by: row.get("by_whom"),
                note: row.get("note"),
            })
        })
        .collect()
}

enum Arg {
    Text(String),
    Int(i64),
}

/// Adds `arg` and returns its placeholder.
fn next(arg: Arg, args: &mut Vec<Arg>) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// Items matching `filter`, newest first (by when recorded), and how many
/// match in all. `now` decides what is overdue.
pub async fn list(
    store: &Store,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<(Vec<Hazard>, i64), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    if !filter.states.is_empty() {
        let list: Vec<String> = filter
            .states
            .iter()
            .map(|s| next(Arg::Text(s.as_str().into()), &mut args))
            .collect();
        conditions.push(format!("state IN ({})", list.join(", ")));
    }
    if let Some(building) = &filter.building {
        let p = next(Arg::Text(building.clone()), &mut args);
        conditions.push(format!("building_id = {p}"));
    }
    if let Some(within) = &filter.within {
        if within.is_empty() {
            conditions.push("FALSE".into());
        } else {
            let list: Vec<String> = within
                .iter()
                .map(|b| next(Arg::Text(b.clone()), &mut args))
                .collect();
            conditions.push(format!("building_id IN ({})", list.join(", ")));
        }
    }
    if let Some(severity) = filter.severity {
        let p = next(Arg::Text(severity.as_str().into()), &mut args);
        conditions.push(format!("severity = {p}"));
    }
    if let Some(overdue) = filter.overdue {
        let p = next(Arg::Int(to_ms(now)), &mut args);
        conditions.push(if overdue {
            format!("(state IN ('open', 'acknowledged') AND deadline_ms <= {p})")
        } else {
            format!("(state NOT IN ('open', 'acknowledged') OR deadline_ms > {p})")
        });
    }
    let filters = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let bind = |sql: String, args: &[Arg]| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(t) => query.bind(t.clone()),
                Arg::Int(i) => query.bind(*i),
            };
        }
        query
    };
    let total: i64 = bind(
        format!("SELECT COUNT(*) AS n FROM hazards {filters}"),
        &args,
    )
    .fetch_one(store.pool())
    .await?
    .get("n");
    let (limit, offset) = (
        next(Arg::Int(filter.limit), &mut args),
        next(Arg::Int(filter.offset), &mut args),
    );
    let sql = format!(
        "{} {filters} ORDER BY recorded_ms DESC, id DESC LIMIT {limit} OFFSET {offset}",
        select_hazards!("")
    );
    let rows = bind(sql, &args).fetch_all(store.pool()).await?;
    let items = rows.iter().map(hazard_row).collect::<Result<_, _>>()?;
    Ok((items, total))
}

/// The state of `id` inside `tx`, to explain a refused action.
async fn state_of(conn: &mut AnyConnection, id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM hazards WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

async fn read_back(store: &Store, id: i64) -> Result<Hazard, HazardError> {
    get(store, id).await?.ok_or(HazardError::NotFound(id))
}

/// `by` takes on an `open` item (it stops escalating as unacknowledged).
pub async fn acknowledge(
    store: &Store,
    id: i64,
    by: &str,
    now: OffsetDateTime,
) -> Result<Hazard, HazardError> {
    let by = person(by)?;
    let now_ms = to_ms(now);
    {
        let _turn = store.turn().await;
        let mut tx = store.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE hazards SET state = 'acknowledged', acknowledged_ms = $2, acknowledged_by = $3
             WHERE id = $1 AND state = 'open'",
        )
        .bind(id)
        .bind(now_ms)
        .bind(by)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(match state_of(&mut tx, id).await?.as_deref() {
                None => HazardError::NotFound(id),
                Some("acknowledged") => {
                    HazardError::WrongState(format!("hazard {id} is already acknowledged"))
                }
                Some(state) => HazardError::WrongState(format!(
                    "hazard {id} is {state}: only an open hazard can be acknowledged"
                )),
            });
        }
        record(&mut tx, id, now_ms, Action::Acknowledged, by, "").await?;
        tx.commit().await?;
    }
    read_back(store, id).await
}

/// `by` adds a remark to an item in any state; `text` is kept as written.
pub async fn remark(
    store: &Store,
    id: i64,
    by: &str,
    text: &str,
    now: OffsetDateTime,
) -> Result<Hazard, HazardError> {
    let by = person(by)?;
    let text = remark_text("text", text)?;
    {
        let _turn = store.turn().await;
        let mut tx = store.pool().begin().await?;
        // Items are never deleted: one that exists now still does at commit.
        if state_of(&mut tx, id).await?.is_none() {
            return Err(HazardError::NotFound(id));
        }
        record(&mut tx, id, to_ms(now), Action::Remark, by, text).await?;
        tx.commit().await?;
    }
    read_back(store, id).await
}

/// `by` closes (销号) a `resolved` item with `remark`; refused while the
/// condition is present (the rules have not seen it clear).
pub async fn close(
    store: &Store,
    id: i64,
    by: &str,
    remark: &str,
    now: OffsetDateTime,
) -> Result<Hazard, HazardError> {
    let by = person(by)?;
    let remark = remark_text("remark", remark)?;
    let now_ms = to_ms(now);
    {
        let _turn = store.turn().await;
        let mut tx = store.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE hazards SET state = 'closed', closed_ms = $2, closed_by = $3, closed_remark = $4
             WHERE id = $1 AND state = 'resolved'",
        )
        .bind(id)
        .bind(now_ms)
        .bind(by)
        .bind(remark)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(match state_of(&mut tx, id).await?.as_deref() {
                None => HazardError::NotFound(id),
                Some("closed") => HazardError::WrongState(format!("hazard {id} is already closed")),
                Some(state) => HazardError::WrongState(format!(
                    "the condition is still present: hazard {id} is {state}; it can be closed (销号) once the rules see the condition cleared and resolve it"
                )),
            });
        }
        record(&mut tx, id, now_ms, Action::Closed, by, remark).await?;
        tx.commit().await?;
    }
    read_back(store, id).await
}
