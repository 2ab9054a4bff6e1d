//! What a new verdict and the clock do to hazard items: pure decisions,
//! no I/O (the SQL is in `store.rs`).

use crate::rules::{Code, Reason, Verdict};

use super::{Escalation, Severity, State};

/// An item of the building that is not closed, as the rules need it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Existing {
    pub id: i64,
    pub code: Code,
    pub point: Option<String>,
    pub state: State,
    /// Someone acknowledged it at some point (a reopened item goes back to
    /// `acknowledged`, not `open`).
    pub acknowledged: bool,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change<'a> {
    /// A new item for this reason.
    Open(&'a Reason, Severity),
    /// A resolved item whose condition came back.
    Reopen { id: i64, to: State },
    /// An active item whose condition the latest reading still shows.
    Seen { id: i64, value: Option<f64> },
    /// An active item whose condition is gone.
    Resolve { id: i64 },
}

fn same(existing: &Existing, reason: &Reason) -> bool {
    existing.code == reason.code && existing.point == reason.point
}

/// The changes `verdict` makes to a building's items that are not closed.
pub(super) fn plan<'a>(existing: &[Existing], verdict: &'a Verdict) -> Vec<Change<'a>> {
    let mut changes = Vec::new();
    // Only what may page opens or reopens: nothing in maintenance mode.
    for reason in verdict.pageable() {
        let Some(severity) = Severity::of(reason.code) else {
            continue;
        };
        match existing.iter().find(|e| same(e, reason)) {
            None => changes.push(Change::Open(reason, severity)),
            Some(e) if e.state == State::Resolved => changes.push(Change::Reopen {
                id: e.id,
                to: if e.acknowledged {
                    State::Acknowledged
                } else {
                    State::Open
                },
            }),
            Some(_) => {}
        }
    }
    for e in existing.iter().filter(|e| e.state.active()) {
        match verdict.reasons.iter().find(|r| same(e, r)) {
            Some(reason) if reason.current => changes.push(Change::Seen {
                id: e.id,
                value: reason.value,
            }),
            // Waiting out its clear-duration: keep it as it is.
            Some(_) => {}
            None if visible(e, verdict) => changes.push(Change::Resolve { id: e.id }),
            None => {}
        }
    }
    changes
}

/// The rules could have seen `e`'s condition in `verdict`: the gateway is
/// online and `e`'s point has usable data. Otherwise its absence proves
/// nothing.
fn visible(e: &Existing, verdict: &Verdict) -> bool {
    verdict.reasons.iter().all(|r| match r.code {
        Code::GatewayOffline => false,
        Code::NoData | Code::PointStale | Code::CannotVerify => r.point != e.point,
        _ => true,
    })
}

/// The escalation steps due for an item at `now_ms`, lowest first; none
/// once resolved or closed, and never one at or below `level`.
pub(super) fn escalations(
    state: State,
    level: u8,
    ack_due_ms: i64,
    deadline_ms: i64,
    now_ms: i64,
) -> Vec<Escalation> {
    let mut steps = Vec::new();
    if state == State::Open && ack_due_ms <= now_ms && level < Escalation::Unacknowledged.level() {
        steps.push(Escalation::Unacknowledged);
    }
    if state.active() && deadline_ms <= now_ms && level < Escalation::Overdue.level() {
        steps.push(Escalation::Overdue);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Status;

    fn reason(code: Code, point: Option<&str>) -> Reason {
        Reason {
            value: Some(1.0),
            ..Reason::new(code, point)
        }
    }

    fn verdict(reasons: Vec<Reason>) -> Verdict {
        let status = reasons
            .iter()
            .map(|r| r.code.status())
            .min()
            .unwrap_or(Status::Ok);
        Verdict { status, reasons }
    }

    fn existing(id: i64, code: Code, point: Option<&str>, state: State) -> Existing {
        Existing {
            id,
            code,
            point: point.map(str::to_owned),
            state,
            acknowledged: state == State::Acknowledged,
        }
    }

    const TANK: Option<&str> = Some("tank.level");

    #[test]
    fn a_new_condition_opens_an_item_with_the_severity_of_its_status() {
        let v = verdict(vec![
            reason(Code::TankVolumeLow, TANK),
            reason(Code::PanelFault, Some("panel.fault")),
            reason(Code::GatewayOffline, None),
        ]);
        let severities: Vec<_> = plan(&[], &v)
            .into_iter()
            .map(|c| match c {
                Change::Open(r, s) => (r.code, s),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            severities,
            [
                (Code::TankVolumeLow, Severity::Urgent),
                (Code::PanelFault, Severity::General),
                (Code::GatewayOffline, Severity::Monitoring),
            ]
        );
    }

    #[test]
    fn a_condition_already_listed_is_only_seen_again() {
        let v = verdict(vec![reason(Code::TankVolumeLow, TANK)]);
        let e = [existing(7, Code::TankVolumeLow, TANK, State::Acknowledged)];
        assert_eq!(
            plan(&e, &v),
            [Change::Seen {
                id: 7,
                value: Some(1.0)
            }]
        );
    }

    #[test]
    fn the_same_code_on_another_point_is_another_item() {
        let v = verdict(vec![reason(Code::NoData, Some("riser.pressure"))]);
        let e = [existing(7, Code::NoData, TANK, State::Open)];
        let changes = plan(&e, &v);
        assert!(
            matches!(changes[0], Change::Open(r, _) if r.point.as_deref() == Some("riser.pressure"))
        );
        assert_eq!(changes[1], Change::Resolve { id: 7 });
    }

    #[test]
    fn maintenance_opens_and_reopens_nothing_but_still_resolves() {
        let mut v = verdict(vec![
            reason(Code::TankVolumeLow, TANK),
            Reason {
                until: Some(time::OffsetDateTime::UNIX_EPOCH),
                ..Reason::new(Code::Maintenance, None)
            },
        ]);
        assert!(plan(&[], &v).is_empty());
        let resolved = [existing(3, Code::TankVolumeLow, TANK, State::Resolved)];
        assert!(plan(&resolved, &v).is_empty());
        v.reasons.remove(0);
        let open = [existing(3, Code::TankVolumeLow, TANK, State::Open)];
        assert_eq!(plan(&open, &v), [Change::Resolve { id: 3 }]);
    }

    #[test]
    fn a_reason_waiting_out_its_clear_duration_keeps_its_item_and_opens_none() {
        let v = verdict(vec![Reason {
            current: false,
            ..reason(Code::TankVolumeLow, TANK)
        }]);
        assert!(plan(&[], &v).is_empty());
        let e = [existing(1, Code::TankVolumeLow, TANK, State::Open)];
        assert!(plan(&e, &v).is_empty());
    }

    #[test]
    fn a_resolved_item_reopens_to_the_state_it_had() {
        let v = verdict(vec![reason(Code::TankVolumeLow, TANK)]);
        let mut e = existing(1, Code::TankVolumeLow, TANK, State::Resolved);
        assert_eq!(
            plan(std::slice::from_ref(&e), &v),
            [Change::Reopen {
                id: 1,
                to: State::Open
            }]
        );
        e.acknowledged = true;
        assert_eq!(
            plan(&[e], &v),
            [Change::Reopen {
                id: 1,
                to: State::Acknowledged
            }]
        );
    }

    #[test]
    fn nothing_resolves_while_the_rules_cannot_see_the_condition() {
        let e = [
            existing(1, Code::TankVolumeLow, TANK, State::Open),
            existing(
                2,
                Code::StaticPressureLow,
                Some("riser.pressure"),
                State::Open,
            ),
        ];
        let offline = verdict(vec![reason(Code::GatewayOffline, None)]);
        let changes = plan(&e, &offline);
        assert!(
            changes.iter().all(|c| matches!(c, Change::Open(..))),
            "{changes:?}"
        );
        for code in [Code::NoData, Code::PointStale, Code::CannotVerify] {
            let blind = verdict(vec![reason(code, TANK)]);
            let changes = plan(&e, &blind);
            assert!(
                !changes.contains(&Change::Resolve { id: 1 }),
                "{code:?}: {changes:?}"
            );
            assert!(
                changes.contains(&Change::Resolve { id: 2 }),
                "the other point is seen: {changes:?}"
            );
        }
    }

    #[test]
    fn a_gateway_back_online_resolves_its_offline_item() {
        let e = [existing(4, Code::GatewayOffline, None, State::Open)];
        assert_eq!(plan(&e, &verdict(vec![])), [Change::Resolve { id: 4 }]);
    }

    #[test]
    fn escalation_rises_once_per_level_and_stops_when_resolved() {
        let (ack_due, deadline) = (100, 1000);
        assert!(escalations(State::Open, 0, ack_due, deadline, 99).is_empty());
        assert_eq!(
            escalations(State::Open, 0, ack_due, deadline, 100),
            [Escalation::Unacknowledged]
        );
        assert!(escalations(State::Open, 1, ack_due, deadline, 999).is_empty());
        assert!(
            escalations(State::Acknowledged, 0, ack_due, deadline, 999).is_empty(),
            "acknowledged in time: nothing until the deadline"
        );
        assert_eq!(
            escalations(State::Acknowledged, 0, ack_due, deadline, 1000),
            [Escalation::Overdue]
        );
        assert_eq!(
            escalations(State::Open, 0, ack_due, deadline, 1000),
            [Escalation::Unacknowledged, Escalation::Overdue]
        );
        assert!(escalations(State::Open, 2, ack_due, deadline, 5000).is_empty());
        assert!(escalations(State::Resolved, 0, ack_due, deadline, 5000).is_empty());
        assert!(escalations(State::Closed, 0, ack_due, deadline, 5000).is_empty());
    }
}
