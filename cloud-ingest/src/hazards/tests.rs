//! The lifecycle against a real store (SQLite, or PostgreSQL with
//! `RISER_TEST_DATABASE_URL`), driven through `crate::judge` as in service.

use std::sync::Arc;

use riser_contract::{Message, Quality, Reading, Telemetry, VERSION};
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::App;

const T0: OffsetDateTime = datetime!(2026-12-10 08:00 UTC);

fn reading(point: &str, at: OffsetDateTime, value: f64) -> Reading {
    Reading {
        point: point.into(),
        ts: at,
        value: Some(value),
        unit: None,
        quality: Quality::Good,
        exception: None,
        clock: None,
    }
}

/// B2's tank at `level` m (below 1.7 m it holds less than its 12 m³) and a
/// good static pressure, read, received and judged at `at`.
async fn report(app: &Arc<App>, seq: u64, at: OffsetDateTime, level: f64) {
    let m = Message::Telemetry(Telemetry::new(
        "gw-B2",
        seq,
        vec![
            reading("tank.level", at, level),
            reading("riser.pressure", at, 0.3),
        ],
    ));
    app.store.ingest(&m, at).await.unwrap();
    crate::judge(app, Some(&["gw-B2"]), at).await.unwrap();
}

async fn gateway_offline(app: &Arc<App>, at: OffsetDateTime) {
    let m = Message::Status(riser_contract::Status {
        v: VERSION,
        gateway: "gw-B2".into(),
        online: false,
        ts: None,
        software: None,
        health: None,
    });
    app.store.ingest(&m, at).await.unwrap();
    crate::judge(app, Some(&["gw-B2"]), at).await.unwrap();
}

/// Every item of B2, oldest first.
async fn items(app: &App) -> Vec<Hazard> {
    let filter = Filter {
        building: Some("B2".into()),
        ..Filter::default()
    };
    let (mut items, _) = list(&app.store, &filter, T0).await.unwrap();
    items.reverse();
    items
}

async fn only_item(app: &App) -> Hazard {
    let mut all = items(app).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

async fn actions(app: &App, id: i64) -> Vec<(Action, String, OffsetDateTime, String)> {
    transitions(&app.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.action, t.by, t.at, t.note))
        .collect()
}

fn system(action: Action, at: OffsetDateTime) -> (Action, String, OffsetDateTime, String) {
    (action, SYSTEM.into(), at, String::new())
}

#[tokio::test]
async fn an_item_goes_from_open_to_acknowledged_to_resolved_to_closed_with_who_and_when() {
    let (_dir, app) = crate::test_app().await;
    let minute = Duration::minutes(1);
    report(&app, 1, T0, 1.0).await;
    let item = only_item(&app).await;
    assert_eq!(
        (item.code, item.point.as_deref(), item.severity, item.state),
        (
            Code::TankVolumeLow,
            Some("tank.level"),
            Severity::Urgent,
            State::Open
        )
    );
    assert_eq!((item.value, item.required), (Some(6.4), Some(12.0)));
    assert_eq!(item.clause.as_deref(), Some("GB 50974-2014 5.2.1"));
    assert_eq!((item.opened_at, item.recorded_at), (T0, T0));
    assert_eq!(item.ack_due, T0 + Duration::minutes(30), "urgent: 30 min");
    assert_eq!(item.deadline, T0 + Duration::hours(24), "urgent: 24 h");

    report(&app, 2, T0 + minute, 0.9).await;
    let item = only_item(&app).await;
    assert_eq!(item.value, Some(5.6), "the value as last seen");
    assert_eq!(item.last_seen_at, T0 + minute);

    let acked = acknowledge(&app.store, item.id, " 张工 ", T0 + 2 * minute)
        .await
        .unwrap();
    assert_eq!(acked.state, State::Acknowledged);
    assert_eq!(acked.acknowledged_by.as_deref(), Some("张工"));
    assert_eq!(acked.acknowledged_at, Some(T0 + 2 * minute));

    report(&app, 3, T0 + 3 * minute, 2.3).await;
    let item = only_item(&app).await;
    assert_eq!(item.state, State::Resolved);
    assert_eq!(item.resolved_at, Some(T0 + 3 * minute));

    let closed = close(&app.store, item.id, "李工", "补水阀已更换", T0 + 4 * minute)
        .await
        .unwrap();
    assert_eq!(closed.state, State::Closed);
    assert_eq!(
        (closed.closed_by.as_deref(), closed.closed_remark.as_deref()),
        (Some("李工"), Some("补水阀已更换"))
    );
    assert_eq!(closed.closed_at, Some(T0 + 4 * minute));
    assert_eq!(
        actions(&app, item.id).await,
        [
            system(Action::Opened, T0),
            (
                Action::Acknowledged,
                "张工".into(),
                T0 + 2 * minute,
                String::new()
            ),
            system(Action::Resolved, T0 + 3 * minute),
            (
                Action::Closed,
                "李工".into(),
                T0 + 4 * minute,
                "补水阀已更换".into()
            ),
        ]
    );
}

#[tokio::test]
async fn closing_is_refused_while_the_condition_is_present() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    let item = only_item(&app).await;
    let refused = close(&app.store, item.id, "李工", "已处理", T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, HazardError::WrongState(m) if m.contains("the condition is still present")),
        "{refused}"
    );
    acknowledge(&app.store, item.id, "张工", T0).await.unwrap();
    assert!(matches!(
        close(&app.store, item.id, "李工", "已处理", T0).await,
        Err(HazardError::WrongState(_))
    ));
    assert!(
        matches!(
            acknowledge(&app.store, item.id, "王工", T0).await,
            Err(HazardError::WrongState(m)) if m.contains("already acknowledged")
        ),
        "acknowledged once"
    );
    assert_eq!(only_item(&app).await.state, State::Acknowledged);
    assert!(matches!(
        close(&app.store, 999, "李工", "已处理", T0).await,
        Err(HazardError::NotFound(999))
    ));
}

#[tokio::test]
async fn a_resolved_item_whose_condition_returns_is_reopened_not_duplicated() {
    let (_dir, app) = crate::test_app().await;
    let minute = Duration::minutes(1);
    report(&app, 1, T0, 1.0).await;
    let id = only_item(&app).await.id;
    report(&app, 2, T0 + minute, 2.3).await;
    report(&app, 3, T0 + 2 * minute, 1.0).await;
    let item = only_item(&app).await;
    assert_eq!((item.id, item.state, item.reopened), (id, State::Open, 1));
    assert_eq!(item.resolved_at, None);
    assert_eq!(
        item.deadline,
        T0 + Duration::hours(24),
        "deadline unchanged"
    );

    acknowledge(&app.store, id, "张工", T0 + 3 * minute)
        .await
        .unwrap();
    report(&app, 4, T0 + 4 * minute, 2.3).await;
    report(&app, 5, T0 + 5 * minute, 1.0).await;
    let item = only_item(&app).await;
    assert_eq!(
        (item.state, item.reopened),
        (State::Acknowledged, 2),
        "back to acknowledged: someone already took it on"
    );
    let steps: Vec<Action> = actions(&app, id).await.into_iter().map(|a| a.0).collect();
    assert_eq!(
        steps,
        [
            Action::Opened,
            Action::Resolved,
            Action::Reopened,
            Action::Acknowledged,
            Action::Resolved,
            Action::Reopened
        ]
    );
}

#[tokio::test]
async fn a_closed_item_stays_closed_and_the_condition_coming_back_opens_a_new_one() {
    let (_dir, app) = crate::test_app().await;
    let minute = Duration::minutes(1);
    report(&app, 1, T0, 1.0).await;
    report(&app, 2, T0 + minute, 2.3).await;
    let first = only_item(&app).await.id;
    close(&app.store, first, "李工", "已补水", T0 + minute)
        .await
        .unwrap();
    report(&app, 3, T0 + 2 * minute, 1.0).await;
    let all = items(&app).await;
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].id, all[0].state), (first, State::Closed));
    assert_eq!(all[1].state, State::Open);
    assert_eq!(all[1].recorded_at, T0 + 2 * minute);
}

#[tokio::test]
async fn a_gateway_going_offline_resolves_nothing() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    gateway_offline(&app, T0 + Duration::minutes(1)).await;
    let all = items(&app).await;
    assert_eq!(
        all.iter()
            .map(|h| (h.code, h.state, h.severity))
            .collect::<Vec<_>>(),
        [
            (Code::TankVolumeLow, State::Open, Severity::Urgent),
            (Code::GatewayOffline, State::Open, Severity::Monitoring),
        ]
    );
    assert_eq!(all[1].point, None);
}

#[tokio::test]
async fn a_stale_point_keeps_the_item_on_it_open() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    // Nothing arrives for an hour: tank.level is stale.
    crate::judge(&app, Some(&["gw-B2"]), T0 + Duration::hours(1))
        .await
        .unwrap();
    let all = items(&app).await;
    assert_eq!(all[0].code, Code::TankVolumeLow);
    assert_eq!(all[0].state, State::Open, "{all:#?}");
    assert!(
        all[1..]
            .iter()
            .all(|h| matches!(h.code, Code::PointStale | Code::GatewayOffline)),
        "the silence is an item of its own: {all:#?}"
    );
}

#[tokio::test]
async fn maintenance_mode_opens_nothing() {
    let (_dir, app) = crate::test_app().await;
    app.store
        .add_maintenance("B2", T0, T0 + Duration::hours(2), "张工", "换阀", T0)
        .await
        .unwrap();
    report(&app, 1, T0 + Duration::minutes(1), 1.0).await;
    assert!(items(&app).await.is_empty());
    // Still low when the window ends: now it is an item.
    report(&app, 2, T0 + Duration::hours(2), 1.0).await;
    assert_eq!(only_item(&app).await.code, Code::TankVolumeLow);
}

#[tokio::test]
async fn escalation_happens_at_ack_due_then_at_the_deadline_and_only_once() {
    let (_dir, app) = crate::test_app().await;
    let config = HazardsConfig::default();
    report(&app, 1, T0, 1.0).await;
    let id = only_item(&app).await.id;

    escalate(&app.store, T0 + Duration::minutes(29), &config)
        .await
        .unwrap();
    assert_eq!(only_item(&app).await.escalation, 0, "not yet due");

    let due = T0 + Duration::minutes(30);
    for _ in 0..2 {
        escalate(&app.store, due, &config).await.unwrap();
    }
    let item = only_item(&app).await;
    assert_eq!((item.escalation, item.escalated_at), (1, Some(due)));

    // Acknowledged late: it stays escalated and escalates again when overdue.
    acknowledge(&app.store, id, "张工", due).await.unwrap();
    let deadline = T0 + Duration::hours(24);
    escalate(&app.store, deadline - Duration::seconds(1), &config)
        .await
        .unwrap();
    assert_eq!(only_item(&app).await.escalation, 1);
    for _ in 0..2 {
        escalate(&app.store, deadline, &config).await.unwrap();
    }
    let item = only_item(&app).await;
    assert_eq!((item.escalation, item.escalated_at), (2, Some(deadline)));
    assert!(item.overdue(deadline));

    let escalations: Vec<_> = actions(&app, id)
        .await
        .into_iter()
        .filter(|a| a.0 == Action::Escalated)
        .collect();
    assert_eq!(
        escalations,
        [
            (
                Action::Escalated,
                SYSTEM.into(),
                due,
                "unacknowledged".into()
            ),
            (Action::Escalated, SYSTEM.into(), deadline, "overdue".into()),
        ]
    );
}

#[tokio::test]
async fn two_nodes_escalating_at_once_record_each_step_once() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    let id = only_item(&app).await.id;
    let later = T0 + Duration::days(2);
    let (a, b) = tokio::join!(
        store::escalate(&app.store, later),
        store::escalate(&app.store, later)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 2, "unacknowledged, then overdue");
    let escalated = actions(&app, id)
        .await
        .into_iter()
        .filter(|a| a.0 == Action::Escalated)
        .count();
    assert_eq!(escalated, 2);
    assert_eq!(only_item(&app).await.escalation, 2);
}

#[tokio::test]
async fn a_resolved_item_never_escalates() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    report(&app, 2, T0 + Duration::minutes(1), 2.3).await;
    escalate(
        &app.store,
        T0 + Duration::days(30),
        &HazardsConfig::default(),
    )
    .await
    .unwrap();
    let item = only_item(&app).await;
    assert_eq!((item.state, item.escalation), (State::Resolved, 0));
    assert!(!item.overdue(T0 + Duration::days(30)));
}

#[tokio::test]
async fn remarks_are_kept_as_written_in_any_state() {
    let (_dir, app) = crate::test_app().await;
    report(&app, 1, T0, 1.0).await;
    let id = only_item(&app).await.id;
    let text = "<img src=x onerror=alert(1)> 已联系物业";
    remark(&app.store, id, "张工", text, T0).await.unwrap();
    report(&app, 2, T0 + Duration::minutes(1), 2.3).await;
    close(&app.store, id, "李工", "已补水", T0 + Duration::minutes(2))
        .await
        .unwrap();
    remark(
        &app.store,
        id,
        "王科长",
        "复查合格",
        T0 + Duration::hours(1),
    )
    .await
    .unwrap();
    let remarks: Vec<_> = actions(&app, id)
        .await
        .into_iter()
        .filter(|a| a.0 == Action::Remark)
        .map(|a| (a.1, a.3))
        .collect();
    assert_eq!(
        remarks,
        [
            ("张工".to_owned(), text.to_owned()),
            ("王科长".to_owned(), "复查合格".to_owned())
        ]
    );
    assert!(matches!(
        remark(&app.store, id, "张工", "  ", T0).await,
        Err(HazardError::Invalid(_))
    ));
    assert!(matches!(
        remark(&app.store, id, "", "x", T0).await,
        Err(HazardError::Invalid(_))
    ));
    assert!(matches!(
        remark(&app.store, 999, "张工", "x", T0).await,
        Err(HazardError::NotFound(999))
    ));
}

#[tokio::test]
async fn a_building_never_heard_from_is_not_monitored_yet_and_pages_no_one() {
    let (_dir, app) = crate::test_app().await;
    crate::judge(&app, None, T0).await.unwrap();
    let all =
        |app: Arc<App>| async move { list(&app.store, &Filter::default(), T0).await.unwrap().0 };
    assert_eq!(
        all(app.clone()).await,
        Vec::new(),
        "installing is no hazard"
    );
    crate::heard_from(&app, "gw-B1", T0).await;
    crate::judge(&app, None, T0).await.unwrap();
    let codes: Vec<_> = all(app.clone())
        .await
        .iter()
        .map(|h| (h.building_id.clone(), h.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("B1".to_owned(), Code::NoData),
            ("B1".to_owned(), Code::NoData)
        ],
        "once heard from, a missing point is monitoring lost"
    );
}

#[tokio::test]
async fn windows_follow_the_severity_and_the_config() {
    let (_dir, app) = crate::test_app().await;
    // B1's gateway is up but its points have no data (监测中断).
    crate::heard_from(&app, "gw-B1", T0).await;
    crate::judge(&app, None, T0).await.unwrap();
    let filter = Filter {
        building: Some("B1".into()),
        ..Filter::default()
    };
    let (b1, total) = list(&app.store, &filter, T0).await.unwrap();
    assert_eq!(total, 2, "{b1:#?}");
    for item in &b1 {
        assert_eq!(
            (item.code, item.severity),
            (Code::NoData, Severity::Monitoring)
        );
        assert_eq!(item.ack_due, T0 + Duration::hours(4));
        assert_eq!(item.deadline, T0 + Duration::hours(72));
    }

    let config: HazardsConfig =
        toml::from_str("[deadline_hours]\nurgent = 4\n[ack_within_minutes]\nurgent = 5\n").unwrap();
    assert_eq!(config.deadline_ms(Severity::Urgent), 4 * 3_600_000);
    assert_eq!(config.deadline_ms(Severity::General), 168 * 3_600_000);
    assert_eq!(config.ack_within_ms(Severity::Urgent), 5 * 60_000);
    assert!(config.validate().is_ok());
    let zero: HazardsConfig = toml::from_str("[deadline_hours]\ngeneral = 0\n").unwrap();
    assert_eq!(
        zero.validate().unwrap_err(),
        "key `hazards.deadline_hours.general`: must be positive"
    );
    assert!(toml::from_str::<HazardsConfig>("deadline_days = 1\n").is_err());
    assert!(toml::from_str::<HazardsConfig>("[deadline_hours]\nurgnet = 1\n").is_err());
}

#[tokio::test]
async fn items_without_a_value_and_with_one_are_recorded_in_one_judging() {
    let (_dir, app) = crate::test_app().await;
    let m = Message::Telemetry(Telemetry::new(
        "gw-B2",
        1,
        vec![
            reading("tank.level", T0, 1.0),
            reading("riser.pressure", T0, 0.3),
        ],
    ));
    app.store.ingest(&m, T0).await.unwrap();
    crate::heard_from(&app, "gw-B1", T0).await;
    // One transaction, one connection: B1's items (no value) first, then
    // B2's (a value); twice, so both are seen again too.
    for _ in 0..2 {
        crate::judge(&app, None, T0).await.unwrap();
    }
    let (all, total) = list(&app.store, &Filter::default(), T0).await.unwrap();
    assert_eq!(total, 3, "{all:#?}");
    let values: Vec<_> = all
        .iter()
        .map(|h| (h.building_id.as_str(), h.value))
        .collect();
    assert!(values.contains(&("B1", None)), "{values:?}");
    assert!(values.contains(&("B2", Some(6.4))), "{values:?}");
}
