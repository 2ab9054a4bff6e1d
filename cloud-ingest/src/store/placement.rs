//! Where a reading or event goes in time: the gateway's timestamp when its
//! clock was trusted, the arrival time when it was not.

use riser_contract::ClockFlag;
use time::{Duration, OffsetDateTime};

/// A gateway time further than this past the arrival is not believed: a
/// board whose clock says 2099 would otherwise hold a point's latest value
/// until then.
pub const FUTURE_TOLERANCE: Duration = Duration::minutes(5);

/// How a reading or event may change its point's latest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToLatest {
    /// When it is at least as new as the stored latest value.
    IfNewer,
    /// Only when the point has no latest value yet: its real time is unknown
    /// and older than its arrival, so it cannot be compared.
    IfAbsent,
}

/// The time a reading or event is stored and judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub ts: OffsetDateTime,
    /// What the gateway said, when `ts` is not that.
    pub gateway_ts: Option<OffsetDateTime>,
    pub latest: ToLatest,
}

/// Places a reading or event stamped `ts` by the gateway, flagged `clock`,
/// arriving at `arrival`, sent from the backlog if `replay`.
///
/// - A trusted time (also `restamped` and `jumped`, which are the gateway's
///   best estimate) is kept; the newest by that time becomes the latest.
/// - An `unsynced` time (or one in the future) is replaced by the arrival
///   time, so an alarm from a board whose clock is in 1970 is current.
/// - But from the backlog, the arrival time is only an upper bound: such a
///   value fills a point that has none and never replaces one.
pub fn place(
    ts: OffsetDateTime,
    clock: Option<ClockFlag>,
    replay: bool,
    arrival: OffsetDateTime,
) -> Placed {
    let trusted = clock != Some(ClockFlag::Unsynced) && ts - arrival <= FUTURE_TOLERANCE;
    if trusted {
        return Placed {
            ts,
            gateway_ts: None,
            latest: ToLatest::IfNewer,
        };
    }
    Placed {
        ts: arrival,
        gateway_ts: Some(ts),
        latest: if replay {
            ToLatest::IfAbsent
        } else {
            ToLatest::IfNewer
        },
    }
}

pub fn clock_str(clock: ClockFlag) -> &'static str {
    match clock {
        ClockFlag::Restamped => "restamped",
        ClockFlag::Jumped => "jumped",
        ClockFlag::Unsynced => "unsynced",
    }
}

pub fn parse_clock(s: &str) -> Option<ClockFlag> {
    [ClockFlag::Restamped, ClockFlag::Jumped, ClockFlag::Unsynced]
        .into_iter()
        .find(|c| clock_str(*c) == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

    #[test]
    fn a_trusted_time_is_kept_whatever_the_flag() {
        let ts = NOW - Duration::hours(3);
        for clock in [None, Some(ClockFlag::Restamped), Some(ClockFlag::Jumped)] {
            for replay in [false, true] {
                assert_eq!(
                    place(ts, clock, replay, NOW),
                    Placed {
                        ts,
                        gateway_ts: None,
                        latest: ToLatest::IfNewer
                    },
                    "{clock:?} replay={replay}"
                );
            }
        }
    }

    #[test]
    fn an_unsynced_live_value_is_placed_at_its_arrival() {
        let ts = datetime!(1970-01-01 00:00:04 UTC);
        assert_eq!(
            place(ts, Some(ClockFlag::Unsynced), false, NOW),
            Placed {
                ts: NOW,
                gateway_ts: Some(ts),
                latest: ToLatest::IfNewer
            }
        );
    }

    #[test]
    fn an_unsynced_value_from_the_backlog_only_fills_an_empty_point() {
        let ts = datetime!(1970-01-01 00:00:04 UTC);
        let placed = place(ts, Some(ClockFlag::Unsynced), true, NOW);
        assert_eq!((placed.ts, placed.gateway_ts), (NOW, Some(ts)));
        assert_eq!(placed.latest, ToLatest::IfAbsent);
    }

    #[test]
    fn a_time_in_the_future_is_not_believed() {
        let ts = datetime!(2099-01-01 00:00 UTC);
        assert_eq!(place(ts, None, false, NOW).ts, NOW);
        assert_eq!(place(ts, None, false, NOW).gateway_ts, Some(ts));
        let skewed = NOW + Duration::seconds(30);
        assert_eq!(place(skewed, None, false, NOW).ts, skewed);
    }

    #[test]
    fn clock_flags_round_trip_through_text() {
        for c in [ClockFlag::Restamped, ClockFlag::Jumped, ClockFlag::Unsynced] {
            assert_eq!(parse_clock(clock_str(c)), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(clock_str(c)),
                "the same words as the contract"
            );
        }
        assert_eq!(parse_clock("sundial"), None);
    }
}
