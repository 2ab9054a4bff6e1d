//! Hazard items (隐患): the list the work plans ask for (隐患清单、限期整改、
//! 销号、挂牌督办). The rules open an item when a building shows a
//! condition, a person acknowledges it, the rules resolve it when the
//! condition clears, and a person closes it (销号) with a remark. Each
//! item has a rectification deadline (限期整改) by severity and escalates
//! (挂牌督办) when nobody acknowledges it in time or it is still not fixed
//! at its deadline.
//!
//! # Lifecycle
//! | from | to | who moves it | transition stored |
//! |---|---|---|---|
//! | — | `open` | the rules: a reason [pageable](Verdict::pageable) (current, not in maintenance) with no item of its (building, code, point) that is not closed | `opened` by `system` |
//! | `open` | `acknowledged` | a person (`POST /api/hazards/{id}/acknowledge`) | `acknowledged` |
//! | `open`, `acknowledged` | `resolved` | the rules: the reason is gone from the verdict and the rules can see its point (see below) | `resolved` by `system` |
//! | `resolved` | `open` or `acknowledged` (as before) | the rules: the condition is back before anyone closed the item; deadline unchanged | `reopened` by `system` |
//! | `resolved` | `closed` | a person, with a remark (销号); refused while the condition is present | `closed`, the remark as note |
//! | any | same | a person adds a remark | `remark` |
//! | `open`, `acknowledged` | same, escalation level 1 or 2 | the timer ([`escalate`]): level 1 when still `open` at `ack_due`, level 2 when not resolved at `deadline`; levels only rise | `escalated` by `system`, note `unacknowledged` or `overdue` |
//!
//! A closed item stays closed: the condition coming back opens a new item.
//! A reason still in the verdict with `current: false` (waiting out its
//! clear-duration) keeps its item as it is. An item is not resolved while
//! the rules cannot see its condition: the gateway is offline, or its point
//! has no data, is stale or cannot be verified. Maintenance mode opens and
//! reopens nothing, but the rules still resolve what clears.
//!
//! Severity follows the reason's status: `failing` → `urgent` (紧急),
//! `warning` → `general` (一般), `unknown` (gateway offline, no data, stale
//! point) → `monitoring` (监测中断). The deadline runs from when the
//! condition began (the reason's `since`, else when the item was recorded);
//! the acknowledgement window from when it was recorded.
//!
//! [`reconcile`] runs inside the judging transaction with the building's
//! row locked; [`escalate`] and the person's actions change one item each
//! with a single conditional `UPDATE` and store the transition only if a
//! row changed, so several ingest nodes on one PostgreSQL never record a
//! step twice.

mod plan;
mod store;

pub use store::{acknowledge, close, get, list, remark, transitions};

use riser_contract::Quality;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::registry::Building;
use crate::rules::{Code, Reason, Status, Verdict};
use crate::store::{Store, StoreError};

/// Who the rules and the timer act as in transitions.
pub const SYSTEM: &str = "system";
/// Longest `by` (characters).
pub const MAX_BY_CHARS: usize = 100;
/// Longest remark (characters).
pub const MAX_REMARK_CHARS: usize = 2000;

/// `[hazards]`: how long each severity has to be acknowledged and fixed.
/// The numbers are product defaults of this project, not from a standard:
/// the work plans ask for a deadline (限期整改) without giving one. Set them
/// to what the district's plan asks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardsConfig {
    /// Hours from when the condition began to the rectification deadline
    /// (限期整改); an item not resolved by then escalates as overdue.
    #[serde(default)]
    pub deadline_hours: DeadlineHours,
    /// Minutes from when an item is recorded within which someone must
    /// acknowledge it; still `open` after that, it escalates as
    /// unacknowledged.
    #[serde(default)]
    pub ack_within_minutes: AckWithinMinutes,
}

/// `[hazards.deadline_hours]`: product defaults, not code numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineHours {
    /// `urgent` (紧急): the water supply fails the code. Default 24 h.
    pub urgent: u64,
    /// `general` (一般): degraded, the water supply still intact. Default 168 h (7 days).
    pub general: u64,
    /// `monitoring` (监测中断): the system cannot see the building. Default 72 h.
    pub monitoring: u64,
}

impl Default for DeadlineHours {
    fn default() -> Self {
        Self {
            urgent: 24,
            general: 168,
            monitoring: 72,
        }
    }
}

/// `[hazards.ack_within_minutes]`: product defaults, not code numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AckWithinMinutes {
    /// `urgent` (紧急). Default 30 min.
    pub urgent: u64,
    /// `general` (一般). Default 1440 min (a day).
    pub general: u64,
    /// `monitoring` (监测中断). Default 240 min.
    pub monitoring: u64,
}

impl Default for AckWithinMinutes {
    fn default() -> Self {
        Self {
            urgent: 30,
            general: 1440,
            monitoring: 240,
        }
    }
}

impl HazardsConfig {
    /// Every duration must be positive; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let keys = [
            ("deadline_hours.urgent", self.deadline_hours.urgent),
            ("deadline_hours.general", self.deadline_hours.general),
            ("deadline_hours.monitoring", self.deadline_hours.monitoring),
            ("ack_within_minutes.urgent", self.ack_within_minutes.urgent),
            (
                "ack_within_minutes.general",
                self.ack_within_minutes.general,
            ),
            (
                "ack_within_minutes.monitoring",
                self.ack_within_minutes.monitoring,
            ),
        ];
        match keys.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(format!("key `hazards.{key}`: must be positive")),
            None => Ok(()),
        }
    }

    /// The rectification window of `severity`, ms.
    pub fn deadline_ms(&self, severity: Severity) -> i64 {
        let h = &self.deadline_hours;
        let hours = match severity {
            Severity::Urgent => h.urgent,
            Severity::General => h.general,
            Severity::Monitoring => h.monitoring,
        };
        ms(hours, 3_600_000)
    }

    /// The acknowledgement window of `severity`, ms.
    pub fn ack_within_ms(&self, severity: Severity) -> i64 {
        let m = &self.ack_within_minutes;
        let minutes = match severity {
            Severity::Urgent => m.urgent,
            Severity::General => m.general,
            Severity::Monitoring => m.monitoring,
        };
        ms(minutes, 60_000)
    }
}

fn ms(count: u64, unit_ms: i64) -> i64 {
    i64::try_from(count)
        .unwrap_or(i64::MAX)
        .saturating_mul(unit_ms)
}

/// How urgent an item is, from its reason's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 紧急: `failing`, the water would not get up as the code requires.
    Urgent,
    /// 一般: `warning`.
    General,
    /// 监测中断: `unknown`, the system cannot see (gateway offline, no
    /// data, stale point).
    Monitoring,
}

impl Severity {
    /// `None` for `ok`-level reasons (maintenance): they open nothing.
    pub fn of(code: Code) -> Option<Self> {
        match code.status() {
            Status::Failing => Some(Self::Urgent),
            Status::Warning => Some(Self::General),
            Status::Unknown => Some(Self::Monitoring),
            Status::Ok => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::General => "general",
            Self::Monitoring => "monitoring",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Urgent, Self::General, Self::Monitoring]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Urgent => "紧急",
            Self::General => "一般",
            Self::Monitoring => "监测中断",
        }
    }
}

/// Where an item is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = HazardState)]
pub enum State {
    /// Recorded by the rules, nobody has acknowledged it.
    Open,
    /// A person has taken it on; the condition is still present.
    Acknowledged,
    /// The condition cleared; waiting for a person to close it.
    Resolved,
    /// Closed (销号) by a person with a remark. Final.
    Closed,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Open,
        State::Acknowledged,
        State::Resolved,
        State::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The condition is (as far as the rules know) still present.
    pub fn active(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged)
    }
}

/// What a transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = HazardAction)]
pub enum Action {
    Opened,
    Acknowledged,
    Remark,
    Resolved,
    Reopened,
    Escalated,
    Closed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Remark => "remark",
            Self::Resolved => "resolved",
            Self::Reopened => "reopened",
            Self::Escalated => "escalated",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Opened,
            Self::Acknowledged,
            Self::Remark,
            Self::Resolved,
            Self::Reopened,
            Self::Escalated,
            Self::Closed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Why an item escalated (挂牌督办); the level is stored, the reason is
/// the `escalated` transition's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    /// Level 1: still `open` past its acknowledgement window.
    Unacknowledged,
    /// Level 2: not resolved by its deadline.
    Overdue,
}

impl Escalation {
    pub fn level(self) -> u8 {
        match self {
            Self::Unacknowledged => 1,
            Self::Overdue => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unacknowledged => "unacknowledged",
            Self::Overdue => "overdue",
        }
    }
}

/// A stored hazard item.
#[derive(Debug, Clone, PartialEq)]
pub struct Hazard {
    pub id: i64,
    pub building_id: String,
    pub code: Code,
    /// `None` for a condition of the whole building (gateway offline).
    pub point: Option<String>,
    pub severity: Severity,
    pub clause: Option<String>,
    /// Quality of the reading, for `cannot_verify`.
    pub quality: Option<Quality>,
    pub state: State,
    /// As last seen by the rules.
    pub value: Option<f64>,
    pub required: Option<f64>,
    /// When the condition began (the reason's `since`, else `recorded_at`).
    pub opened_at: OffsetDateTime,
    /// When the rules recorded the item.
    pub recorded_at: OffsetDateTime,
    /// Still `open` after this, it escalates (level 1).
    pub ack_due: OffsetDateTime,
    /// Rectification deadline (限期整改): not resolved by then, it escalates (level 2).
    pub deadline: OffsetDateTime,
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<String>,
    /// When the condition last cleared (`None` again once reopened).
    pub resolved_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
    pub closed_by: Option<String>,
    pub closed_remark: Option<String>,
    /// 0 none, 1 unacknowledged, 2 overdue ([`Escalation::level`]).
    pub escalation: u8,
    pub escalated_at: Option<OffsetDateTime>,
    /// The last evaluation whose latest reading still showed the condition.
    pub last_seen_at: OffsetDateTime,
    /// How often the condition came back after it had cleared.
    pub reopened: u32,
}

impl Hazard {
    /// Not resolved or closed by its deadline at `now`.
    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.state.active() && self.deadline <= now
    }

    /// The reason as the rules would show it, for its words
    /// ([`crate::rules::render`]).
    pub fn reason(&self) -> Reason {
        Reason {
            value: self.value,
            required: self.required,
            clause: self.clause.clone(),
            quality: self.quality,
            since: Some(self.opened_at),
            ..Reason::new(self.code, self.point.as_deref())
        }
    }
}

/// One step of an item's life, with who and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub id: i64,
    pub hazard_id: i64,
    pub at: OffsetDateTime,
    pub action: Action,
    /// A person's name as they gave it, or [`SYSTEM`].
    pub by: String,
    /// The remark, the closing remark, or why it escalated.
    pub note: String,
}

/// What to list; every filter optional.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Any of these states; empty: all.
    pub states: Vec<State>,
    pub building: Option<String>,
    /// Only items of these buildings (a user's scope); `None`: any.
    pub within: Option<Vec<String>>,
    pub severity: Option<Severity>,
    /// Only items overdue (or only those not) at the `now` given.
    pub overdue: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            building: None,
            within: None,
            severity: None,
            overdue: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// Why a person's action on an item was refused.
#[derive(Debug, thiserror::Error)]
pub enum HazardError {
    #[error("hazard {0} not found")]
    NotFound(i64),
    /// The item is not in a state the action applies to.
    #[error("{0}")]
    WrongState(String),
    /// A missing or too long name or remark.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `by` trimmed: non-empty, at most [`MAX_BY_CHARS`], no control characters.
/// Anyone may name themselves until authentication arrives (a later issue).
pub(crate) fn person(by: &str) -> Result<&str, HazardError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(HazardError::Invalid(
            "`by` must name who acts (not empty)".into(),
        ));
    }
    if by.chars().count() > MAX_BY_CHARS {
        return Err(HazardError::Invalid(format!(
            "`by` must be at most {MAX_BY_CHARS} characters"
        )));
    }
    if by.chars().any(char::is_control) {
        return Err(HazardError::Invalid(
            "`by` must not contain control characters".into(),
        ));
    }
    Ok(by)
}

/// A remark: not blank, at most [`MAX_REMARK_CHARS`]; kept as written.
pub(crate) fn remark_text<'a>(field: &str, text: &'a str) -> Result<&'a str, HazardError> {
    if text.trim().is_empty() {
        return Err(HazardError::Invalid(format!("`{field}` must not be empty")));
    }
    if text.chars().count() > MAX_REMARK_CHARS {
        return Err(HazardError::Invalid(format!(
            "`{field}` must be at most {MAX_REMARK_CHARS} characters"
        )));
    }
    Ok(text)
}

/// Opens, reopens and resolves `building`'s hazards from its new verdict,
/// inside the judging transaction (the building's row is locked).
pub async fn reconcile(
    conn: &mut sqlx::AnyConnection,
    building: &Building,
    verdict: &Verdict,
    now: OffsetDateTime,
    config: &HazardsConfig,
) -> Result<usize, StoreError> {
    store::reconcile(conn, &building.id, verdict, now, config).await
}

/// Escalates hazards unacknowledged or overdue at `now`, each step in its
/// own small transaction. The windows were fixed from `config` when each
/// item was recorded (`ack_due`, `deadline`), so a changed config applies
/// to new items.
pub async fn escalate(
    store: &Store,
    now: OffsetDateTime,
    _config: &HazardsConfig,
) -> Result<usize, StoreError> {
    store::escalate(store, now).await
}

#[cfg(test)]
mod tests;
