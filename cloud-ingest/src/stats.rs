//! Monthly statistics (统计表) for 消防救援 staff: for a chosen month, per
//! town (乡镇/街道) or per community (社区), how many buildings are in
//! scope, monitored and failing, how many hazard items (隐患) were found
//! and rectified, the rectification rate (整改率) and what is overdue, with
//! a totals row (合计); exported as CSV and XLSX by [`csv`] and [`xlsx`].
//!
//! The work plans ask for exactly this table: 东林街道's monthly
//! 整治情况统计表 (due the 19th) has 楼栋总数, 本月完成, 累计完成 and
//! 整改率, where 整改率 = 累计完成 / the total found; 梁平区 keeps a 隐患清单
//! with deadlines (限期整改) and a 动态清单; 达拉特旗 reports a 隐患整改台账
//! and a 汇总表 every half month; the 2024 住宅小区 plan a 进度表 by the 24th.
//!
//! # Definitions
//! A month runs from 00:00 China Standard Time (UTC+8, [`CST`]) on its
//! first day to 00:00 CST on the first of the next. Its *cut-off* is its
//! end, or the moment of the request for the current month; a month that
//! has not begun is refused.
//!
//! | column | what it counts |
//! |---|---|
//! | `in_scope` (楼栋总数) | buildings in the registry (the registry is what is in scope) among those the caller may see, within the `district` / `town` filters |
//! | `monitored` (已接入监测) | of those, buildings whose gateway has been heard from (a `gateways` row); *as of the request*, not the cut-off: the store keeps no history of it |
//! | `failing_now` (当前不达标) | of those, buildings whose stored verdict is `failing`; *as of the request* |
//! | `opened` (本月新发现隐患) | hazard items recorded (`recorded_ms`) within the month, up to the cut-off |
//! | `rectified` (本月整改销号) | items closed (销号, `closed_ms`) within the month, whenever they were recorded |
//! | `found_so_far` (累计发现隐患) | items recorded before the cut-off |
//! | `rectified_so_far` (累计整改销号) | of those, items closed before the cut-off |
//! | `rate` (整改率) | `rectified_so_far / found_so_far`, 0 to 1; `null` when nothing was found |
//! | `overdue` (逾期未整改) | items past their deadline (限期整改, `deadline_ms`) at the cut-off and not resolved or closed then, as their transitions tell (an item resolved by the cut-off and reopened later was not overdue then) |
//!
//! *Rectified* means closed (销号), not merely resolved: the rules resolve
//! an item when the condition clears, but the plans count a hazard as
//! rectified when it is 销号 after the fix was checked (隐患清单、整改责任清单、
//! 确保限期销号; 整改完成后…组织验收). A resolved item waiting to be closed
//! is neither rectified nor overdue.
//!
//! Only items of severity `urgent` (紧急) and `general` (一般) count as
//! hazards ([`COUNTED`]). `monitoring` (监测中断: gateway offline, no data, a
//! stale point) items are left out: they say the system cannot see a
//! building, not that its fire water is deficient, and a 4G outage would
//! otherwise open and close "hazards" by the dozen and distort 整改率.
//!
//! Counts are aggregated per building in SQL (one dialect for SQLite and
//! PostgreSQL) and folded into towns or communities here with the
//! registry; rows keep the registry's order of first appearance.

mod export;
// Named so that `cargo nextest run -E 'test(/statistic/)'` selects them.
#[cfg(test)]
pub(crate) mod statistics_tests;

pub use export::{Export, XLSX_HEADER_ROW, csv, xlsx};

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Serialize, Serializer};
use sqlx::Row as _;
use time::macros::offset;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::hazards::Severity;
use crate::registry::Building;
use crate::rules::Status;
use crate::store::{Store, StoreError, to_ms};

/// China Standard Time (UTC+8): months begin at its midnight.
pub const CST: UtcOffset = offset!(+8);

/// The severities counted as hazards (隐患); `monitoring` is not one (see
/// the module doc).
pub const COUNTED: [Severity; 2] = [Severity::Urgent, Severity::General];

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("`month` must be a month as YYYY-MM, e.g. 2026-11, not `{0}`")]
    BadMonth(String),
    #[error("month {0} has not begun")]
    NotBegun(Month),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the CSV or XLSX file failed.
    #[error("cannot write the {format} export: {message}")]
    Export {
        format: &'static str,
        message: String,
    },
}

/// A calendar month, bounded by midnights in [`CST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: time::Month,
}

impl Month {
    /// Years outside this range are refused (their bounds would not fit).
    const YEARS: std::ops::RangeInclusive<i32> = 2000..=9998;

    /// `YYYY-MM`, e.g. `2026-11`.
    pub fn parse(text: &str) -> Result<Self, StatsError> {
        let bad = || StatsError::BadMonth(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u8 = month.parse().map_err(|_| bad())?;
        let month = time::Month::try_from(month).map_err(|_| bad())?;
        if !Self::YEARS.contains(&year) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    /// The month `t` falls in, in China Standard Time.
    pub fn containing(t: OffsetDateTime) -> Self {
        let date = t.to_offset(CST).date();
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    /// 00:00 CST on its first day.
    pub fn start(self) -> OffsetDateTime {
        Date::from_calendar_date(self.year, self.month, 1)
            .expect("the first of a month in range is a date")
            .midnight()
            .assume_offset(CST)
    }

    /// 00:00 CST on the first day of the next month.
    pub fn end(self) -> OffsetDateTime {
        self.next().start()
    }

    pub fn next(self) -> Self {
        match self.month {
            time::Month::December => Self {
                year: self.year + 1,
                month: time::Month::January,
            },
            month => Self {
                year: self.year,
                month: month.next(),
            },
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a row is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 乡镇/街道 (the default).
    #[default]
    Town,
    /// 社区.
    Community,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "town" => Some(Self::Town),
            "community" => Some(Self::Community),
            _ => None,
        }
    }
}

/// What to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub month: Month,
    pub level: Level,
    /// Only buildings of this district (区/县).
    pub district: Option<String>,
    /// Only buildings of this town (乡镇/街道).
    pub town: Option<String>,
}

impl Request {
    fn includes(&self, b: &Building) -> bool {
        self.district.as_ref().is_none_or(|d| *d == b.district)
            && self.town.as_ref().is_none_or(|t| *t == b.town)
    }
}

/// The numbers of a row (see the module doc for each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// 楼栋总数: buildings in the registry the caller sees.
    pub in_scope: u64,
    /// 已接入监测: of those, whose gateway has been heard from.
    pub monitored: u64,
    /// 当前不达标: of those, failing now.
    pub failing_now: u64,
    /// 本月新发现隐患: items recorded within the month.
    pub opened: u64,
    /// 本月整改销号: items closed within the month.
    pub rectified: u64,
    /// 累计发现隐患: items recorded before the cut-off.
    pub found_so_far: u64,
    /// 累计整改销号: of those, closed before the cut-off.
    pub rectified_so_far: u64,
    /// 逾期未整改: past their deadline at the cut-off and not resolved.
    pub overdue: u64,
}

impl Counts {
    /// 整改率: `rectified_so_far / found_so_far`; `None` when nothing was found.
    pub fn rate(&self) -> Option<f64> {
        (self.found_so_far > 0).then(|| self.rectified_so_far as f64 / self.found_so_far as f64)
    }

    fn add(&mut self, o: &Counts) {
        self.in_scope += o.in_scope;
        self.monitored += o.monitored;
        self.failing_now += o.failing_now;
        self.opened += o.opened;
        self.rectified += o.rectified;
        self.found_so_far += o.found_so_far;
        self.rectified_so_far += o.rectified_so_far;
        self.overdue += o.overdue;
    }
}

/// One town, or one community of a town.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Row {
    pub district: String,
    pub town: String,
    /// At `level=community` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// 整改率: `rectified_so_far / found_so_far`, 0 to 1; null when
    /// nothing was found.
    pub rate: Option<f64>,
}

/// The totals row (合计).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Total {
    #[serde(flatten)]
    pub counts: Counts,
    pub rate: Option<f64>,
}

/// The statistics of one month.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `YYYY-MM`.
    #[schema(value_type = String, example = "2026-11")]
    pub month: Month,
    pub level: Level,
    /// The cut-off: the month's end, or the request's time for the
    /// current month (in CST).
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// The filters applied, as asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    pub rows: Vec<Row>,
    pub total: Total,
}

/// The statistics of `request.month` over `buildings` (those the caller
/// may see; the request's district and town filters apply on top), at
/// `now`.
pub async fn report<'a>(
    store: &Store,
    buildings: impl IntoIterator<Item = &'a Building>,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Report, StatsError> {
    let month = request.month;
    if month.start() > now {
        return Err(StatsError::NotBegun(month));
    }
    let as_of = month.end().min(now);
    // Everything strictly before `until` happened by the cut-off.
    let until = if now < month.end() {
        to_ms(now).saturating_add(1)
    } else {
        to_ms(month.end())
    };
    let hazards = hazard_counts(store, to_ms(month.start()), until).await?;
    let overdue = overdue_counts(store, until).await?;
    let heard = heard_from(store).await?;
    let failing = failing_now(store).await?;

    let mut rows: Vec<Row> = Vec::new();
    let mut index: HashMap<(&str, &str, Option<&str>), usize> = HashMap::new();
    for b in buildings.into_iter().filter(|b| request.includes(b)) {
        let community = (request.level == Level::Community).then_some(b.community.as_str());
        let i = *index
            .entry((b.district.as_str(), b.town.as_str(), community))
            .or_insert_with(|| {
                rows.push(Row {
                    district: b.district.clone(),
                    town: b.town.clone(),
                    community: community.map(str::to_owned),
                    counts: Counts::default(),
                    rate: None,
                });
                rows.len() - 1
            });
        let counts = &mut rows[i].counts;
        counts.in_scope += 1;
        counts.monitored += u64::from(heard.contains(&b.gateway));
        counts.failing_now += u64::from(failing.contains(&b.id));
        if let Some(h) = hazards.get(&b.id) {
            counts.add(h);
        }
        counts.overdue += overdue.get(&b.id).copied().unwrap_or(0);
    }
    let mut total = Counts::default();
    for row in &mut rows {
        row.rate = row.counts.rate();
        total.add(&row.counts);
    }
    Ok(Report {
        month,
        level: request.level,
        as_of: as_of.to_offset(CST),
        district: request.district.clone(),
        town: request.town.clone(),
        rows,
        total: Total {
            counts: total,
            rate: total.rate(),
        },
    })
}

fn count(row: &sqlx::any::AnyRow, column: &str) -> u64 {
    u64::try_from(row.get::<i64, _>(column)).unwrap_or(0)
}

/// Per building: `opened`, `rectified`, `found_so_far` and
/// `rectified_so_far` of the month starting at `from` with its cut-off
/// just before `until` (ms).
async fn hazard_counts(
    store: &Store,
    from: i64,
    until: i64,
) -> Result<HashMap<String, Counts>, StoreError> {
    let rows = sqlx::query(
        "SELECT building_id,
           COUNT(*) AS found_so_far,
           SUM(CASE WHEN recorded_ms >= $1 THEN 1 ELSE 0 END) AS opened,
           SUM(CASE WHEN closed_ms >= $1 AND closed_ms < $2 THEN 1 ELSE 0 END) AS rectified,
           SUM(CASE WHEN closed_ms < $2 THEN 1 ELSE 0 END) AS rectified_so_far
         FROM hazards
         WHERE recorded_ms < $2 AND severity IN ($3, $4)
         GROUP BY building_id",
    )
    .bind(from)
    .bind(until)
    .bind(COUNTED[0].as_str())
    .bind(COUNTED[1].as_str())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let counts = Counts {
                opened: count(row, "opened"),
                rectified: count(row, "rectified"),
                found_so_far: count(row, "found_so_far"),
                rectified_so_far: count(row, "rectified_so_far"),
                ..Counts::default()
            };
            (row.get("building_id"), counts)
        })
        .collect())
}

/// Per building: items past their deadline and still open or acknowledged
/// at the cut-off (just before `until`, ms). The state at the cut-off is
/// the last lifecycle transition before it: `resolved_ms` alone would
/// miss an item resolved then and reopened since.
async fn overdue_counts(store: &Store, until: i64) -> Result<HashMap<String, u64>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.building_id, COUNT(*) AS overdue
         FROM hazards h
         WHERE h.recorded_ms < $1 AND h.deadline_ms < $1 AND h.severity IN ($2, $3)
           AND (h.closed_ms IS NULL OR h.closed_ms >= $1)
           AND (SELECT t.action FROM hazard_transitions t
                WHERE t.hazard_id = h.id AND t.at_ms < $1
                  AND t.action IN ('opened', 'resolved', 'reopened', 'closed')
                ORDER BY t.at_ms DESC, t.id DESC
                LIMIT 1) IN ('opened', 'reopened')
         GROUP BY h.building_id",
    )
    .bind(until)
    .bind(COUNTED[0].as_str())
    .bind(COUNTED[1].as_str())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("building_id"), count(row, "overdue")))
        .collect())
}

/// Gateways ever heard from.
async fn heard_from(store: &Store) -> Result<HashSet<String>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM gateways")
        .fetch_all(store.pool())
        .await?;
    Ok(ids.into_iter().collect())
}

/// Buildings whose stored verdict is `failing`.
async fn failing_now(store: &Store) -> Result<HashSet<String>, StoreError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT building_id FROM building_state WHERE status = $1")
            .bind(Status::Failing.as_str())
            .fetch_all(store.pool())
            .await?;
    Ok(ids.into_iter().collect())
}
