use super::*;
use crate::rules::{RuleState, Verdict};
use riser_contract::Quality;
use riser_contract::{
    ClockFlag, Event, EventKind, Events, Health, Reading, Status as GatewayStatus, Telemetry,
    VERSION,
};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::str::FromStr;
use time::macros::datetime;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path()).await;
    (dir, store)
}

fn reading(ts: OffsetDateTime, level: f64) -> Reading {
    Reading {
        point: "tank.level".into(),
        ts,
        value: Some(level),
        unit: Some("m".into()),
        quality: Quality::Good,
        exception: None,
        clock: None,
    }
}

fn telemetry(seq: u64, ts: OffsetDateTime, level: f64) -> Message {
    Message::Telemetry(Telemetry::new("gw-1", seq, vec![reading(ts, level)]))
}

/// Telemetry in `epoch`, live or from the backlog.
fn telemetry_in(epoch: u32, seq: u64, replay: bool, reading: Reading) -> Message {
    let mut t = Telemetry::new("gw-1", seq, vec![reading]);
    t.epoch = epoch;
    t.replay = replay;
    Message::Telemetry(t)
}

fn alarm(seq: u64, value: f64, ts: OffsetDateTime, clock: Option<ClockFlag>) -> Message {
    Message::Events(Events {
        v: VERSION,
        gateway: "gw-1".into(),
        epoch: 0,
        seq,
        replay: false,
        events: vec![Event {
            kind: EventKind::StateChanged,
            point: "pumps.fire_fault".into(),
            ts,
            value: Some(value),
            quality: Quality::Good,
            clock,
        }],
    })
}

fn status(online: bool, health: Option<Health>) -> Message {
    Message::Status(GatewayStatus {
        v: VERSION,
        gateway: "gw-1".into(),
        online,
        ts: online.then_some(datetime!(2026-11-22 08:00 UTC)),
        software: online.then(|| "0.1.0".to_owned()),
        health,
    })
}

/// (highest, received, missing) of each telemetry epoch of `gw-1`.
async fn telemetry_progress(store: &Store) -> Vec<(u32, u64, u64, u64)> {
    store
        .sequences(Some("gw-1"))
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.stream == Stream::Telemetry)
        .map(|s| (s.epoch, s.highest, s.received, s.missing()))
        .collect()
}

#[tokio::test]
async fn a_repeated_sequence_number_is_dropped_as_duplicate() {
    let (_dir, store) = store().await;
    let now = datetime!(2026-11-22 08:00 UTC);
    assert_eq!(
        store.ingest(&telemetry(1, now, 2.0), now).await.unwrap(),
        Outcome::Stored
    );
    assert_eq!(
        store.ingest(&telemetry(1, now, 9.9), now).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(
        store.history("gw-1", "tank.level").await.unwrap(),
        vec![(now, Some(2.0))]
    );
    assert_eq!(
        store
            .received_seqs("gw-1", Stream::Telemetry)
            .await
            .unwrap(),
        vec![1]
    );
}

#[tokio::test]
async fn an_older_reading_arriving_late_does_not_replace_the_latest() {
    let (_dir, store) = store().await;
    let t1 = datetime!(2026-11-22 08:00 UTC);
    let t0 = datetime!(2026-11-22 07:00 UTC);
    store.ingest(&telemetry(2, t1, 2.0), t1).await.unwrap();
    store.ingest(&telemetry(1, t0, 0.5), t1).await.unwrap();
    let latest = store.latest("gw-1").await.unwrap();
    assert_eq!(latest[0].value.value, Some(2.0));
    assert_eq!(latest[0].value.ts, t1);
    assert_eq!(store.history("gw-1", "tank.level").await.unwrap().len(), 2);
}

/// Judges `B1` to `verdict` with `state`, as one judging transaction.
async fn save(store: &Store, verdict: &Verdict, state: &RuleState, at: OffsetDateTime) -> bool {
    let mut judging = store.begin_judging().await.unwrap();
    let locked = judging.lock("B1").await.unwrap();
    let changed = judging
        .save("B1", &locked, verdict, state, at)
        .await
        .unwrap();
    judging.commit().await.unwrap();
    changed
}

#[tokio::test]
async fn verdict_time_moves_only_when_the_verdict_changes() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let ok = Verdict {
        status: Status::Ok,
        reasons: vec![],
    };
    assert!(save(&store, &ok, &RuleState::default(), t0).await);
    assert!(
        !save(
            &store,
            &ok,
            &RuleState::default(),
            t0 + time::Duration::minutes(1)
        )
        .await
    );
    assert_eq!(store.verdicts().await.unwrap()["B1"].updated_at, t0);
}

#[tokio::test]
async fn the_rule_state_is_saved_with_the_verdict_even_when_the_verdict_stays() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let ok = Verdict {
        status: Status::Ok,
        reasons: vec![],
    };
    save(&store, &ok, &RuleState::default(), t0).await;
    let mut state = RuleState::default();
    state.set_maintenance(Some(t0 + time::Duration::hours(2)));
    assert!(!save(&store, &ok, &state, t0 + time::Duration::minutes(1)).await);
    assert_eq!(store.rule_state("B1").await.unwrap(), state);
    assert_eq!(store.rule_state("B9").await.unwrap(), RuleState::default());
}

#[tokio::test]
async fn maintenance_windows_are_recorded_and_ended_early() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let hour = time::Duration::hours(1);
    let window = store
        .add_maintenance("B1", t0, t0 + 2 * hour, "张工", "更换液位计", t0)
        .await
        .unwrap();
    assert!(window.active(t0 + hour));
    let in_force = async |at| {
        let mut judging = store.begin_judging().await.unwrap();
        judging.maintenance_until("B1", at).await.unwrap()
    };
    assert_eq!(in_force(t0 + hour).await, Some(t0 + 2 * hour));
    assert_eq!(in_force(t0 + 3 * hour).await, None, "over");
    assert_eq!(in_force(t0 - hour).await, None, "not begun");

    assert_eq!(
        store
            .end_maintenance("B1", "李工", t0 + hour)
            .await
            .unwrap(),
        1
    );
    assert_eq!(in_force(t0 + hour).await, None);
    let kept = store.maintenance("B1", 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].ended_by.as_deref(), Some("李工"));
    assert_eq!(kept[0].note, "更换液位计");
}

#[tokio::test]
async fn an_alarm_event_becomes_the_points_latest_value() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    store.ingest(&alarm(1, 1.0, t0, None), t0).await.unwrap();
    // A late, older event does not undo the newer state.
    store
        .ingest(&alarm(2, 0.0, t0 - time::Duration::minutes(1), None), t0)
        .await
        .unwrap();
    let latest = store.latest("gw-1").await.unwrap();
    assert_eq!(latest[0].point, "pumps.fire_fault");
    assert_eq!((latest[0].value.value, latest[0].value.ts), (Some(1.0), t0));
}

#[tokio::test]
async fn a_duplicate_across_reconnects_is_stored_once() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let sent = |seq, replay| telemetry_in(7, seq, replay, reading(t0, seq as f64));
    for seq in 1..=3 {
        store.ingest(&sent(seq, false), t0).await.unwrap();
    }
    // The connection dropped before the PUBACK of 2 and 3 reached the
    // gateway: after the reconnect it sends 4 live, then 2 and 3 again.
    let later = t0 + time::Duration::minutes(5);
    assert_eq!(
        store.ingest(&sent(4, false), later).await.unwrap(),
        Outcome::Stored
    );
    for seq in [2, 3] {
        assert_eq!(
            store.ingest(&sent(seq, true), later).await.unwrap(),
            Outcome::Duplicate
        );
    }
    assert_eq!(store.history("gw-1", "tank.level").await.unwrap().len(), 4);
    assert_eq!(telemetry_progress(&store).await, vec![(7, 4, 4, 0)]);
}

#[tokio::test]
async fn a_late_message_fills_the_gap_it_left() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let at = |minutes| t0 + time::Duration::minutes(minutes);
    store
        .ingest(&telemetry(1, at(0), 2.0), at(0))
        .await
        .unwrap();
    // After an outage the live message comes first, the backlog behind it.
    store
        .ingest(&telemetry(5, at(30), 2.4), at(31))
        .await
        .unwrap();
    assert_eq!(telemetry_progress(&store).await, vec![(0, 5, 2, 3)]);
    store
        .ingest(&telemetry(3, at(20), 2.3), at(31))
        .await
        .unwrap();
    store
        .ingest(&telemetry(2, at(10), 2.2), at(32))
        .await
        .unwrap();
    assert_eq!(telemetry_progress(&store).await, vec![(0, 5, 4, 1)]);
    store
        .ingest(&telemetry(4, at(25), 2.35), at(32))
        .await
        .unwrap();
    assert_eq!(telemetry_progress(&store).await, vec![(0, 5, 5, 0)]);
    assert_eq!(
        store
            .received_seqs("gw-1", Stream::Telemetry)
            .await
            .unwrap(),
        vec![1, 2, 3, 4, 5]
    );
    let latest = store.latest("gw-1").await.unwrap();
    assert_eq!(
        (latest[0].value.value, latest[0].value.ts),
        (Some(2.4), at(30))
    );
}

#[tokio::test]
async fn a_new_epoch_starts_its_own_sequence() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    for seq in [1, 2, 4] {
        store
            .ingest(&telemetry_in(11, seq, false, reading(t0, 2.0)), t0)
            .await
            .unwrap();
    }
    // The gateway's outbox was created afresh: seq 1 again, and not a duplicate.
    let later = t0 + time::Duration::hours(1);
    assert_eq!(
        store
            .ingest(&telemetry_in(12, 1, false, reading(later, 2.1)), later)
            .await
            .unwrap(),
        Outcome::Stored
    );
    assert_eq!(
        telemetry_progress(&store).await,
        vec![(11, 4, 3, 1), (12, 1, 1, 0)],
        "the old epoch keeps its gap; the new one has none"
    );
    assert_eq!(
        store.latest("gw-1").await.unwrap()[0].value.value,
        Some(2.1)
    );
}

#[tokio::test]
async fn events_and_telemetry_count_their_sequences_apart() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    store.ingest(&telemetry(1, t0, 2.0), t0).await.unwrap();
    store.ingest(&alarm(3, 1.0, t0, None), t0).await.unwrap();
    let by_stream: Vec<_> = store
        .sequences(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.stream, s.highest, s.missing()))
        .collect();
    assert_eq!(
        by_stream,
        vec![(Stream::Events, 3, 2), (Stream::Telemetry, 1, 0)]
    );
}

#[tokio::test]
async fn the_last_will_keeps_the_last_health_report() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let mut health = Health {
        uptime_secs: 3600,
        ..Health::default()
    };
    health.outbox.readings = 1200;
    health.outbox.dropped = 3;
    store.ingest(&status(true, Some(health)), t0).await.unwrap();
    let will_at = t0 + time::Duration::minutes(2);
    store.ingest(&status(false, None), will_at).await.unwrap();

    let gw = store.gateway("gw-1").await.unwrap().unwrap();
    assert!(!gw.online);
    assert_eq!(gw.last_seen, will_at);
    assert_eq!(gw.software.as_deref(), Some("0.1.0"));
    assert_eq!(gw.health_at, Some(t0));
    let health = gw.health.unwrap();
    assert_eq!(health["uptime_secs"], 3600);
    assert_eq!(health["outbox"]["readings"], 1200);
    assert_eq!(health["outbox"]["dropped"], 3);
    assert_eq!(store.gateway_online("gw-1").await.unwrap(), Some(false));
}

#[tokio::test]
async fn a_newer_health_report_replaces_the_older_one() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let t1 = t0 + time::Duration::minutes(1);
    let health = |uptime_secs| Health {
        uptime_secs,
        ..Health::default()
    };
    store
        .ingest(&status(true, Some(health(60))), t0)
        .await
        .unwrap();
    store
        .ingest(&status(true, Some(health(120))), t1)
        .await
        .unwrap();
    let gw = store.gateway("gw-1").await.unwrap().unwrap();
    assert_eq!(gw.health.unwrap()["uptime_secs"], 120);
    assert_eq!(gw.health_at, Some(t1));
}

#[tokio::test]
async fn an_alarm_from_a_board_whose_clock_is_in_1970_counts_as_current() {
    let (_dir, store) = store().await;
    let arrival = datetime!(2026-11-22 08:00 UTC);
    let board = datetime!(1970-01-01 00:00:42 UTC);
    store
        .ingest(&alarm(1, 1.0, board, Some(ClockFlag::Unsynced)), arrival)
        .await
        .unwrap();
    let latest = &store.latest("gw-1").await.unwrap()[0];
    assert_eq!(latest.value.value, Some(1.0));
    assert_eq!(latest.value.ts, arrival, "judged at its arrival");
    assert_eq!(latest.gateway_ts, Some(board), "the gateway's time is kept");
    assert_eq!(latest.clock, Some(ClockFlag::Unsynced));

    let row = sqlx::query("SELECT ts_ms, gateway_ts_ms, clock, replay FROM events")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("ts_ms"), to_ms(arrival));
    assert_eq!(row.get::<i64, _>("gateway_ts_ms"), to_ms(board));
    assert_eq!(row.get::<&str, _>("clock"), "unsynced");
    assert_eq!(row.get::<i64, _>("replay"), 0);
}

#[tokio::test]
async fn a_replayed_reading_older_than_the_latest_does_not_replace_it() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let now = t0 + time::Duration::hours(2);
    // After the outage: the live reading first, then the backlog.
    store
        .ingest(&telemetry_in(1, 9, false, reading(now, 2.4)), now)
        .await
        .unwrap();
    let mut backlog = reading(t0, 0.5);
    backlog.clock = Some(ClockFlag::Restamped);
    store
        .ingest(&telemetry_in(1, 3, true, backlog), now)
        .await
        .unwrap();
    let latest = &store.latest("gw-1").await.unwrap()[0];
    assert_eq!((latest.value.value, latest.value.ts), (Some(2.4), now));
    assert_eq!(latest.clock, None);

    let rows: Vec<(i64, f64, i64, Option<String>)> =
        sqlx::query_as("SELECT seq, value, replay, clock FROM readings ORDER BY ts_ms")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![(3, 0.5, 1, Some("restamped".to_owned())), (9, 2.4, 0, None)],
        "history keeps the replayed reading at its own time, flagged"
    );
}

#[tokio::test]
async fn an_unsynced_reading_from_the_backlog_never_replaces_a_live_value() {
    let (_dir, store) = store().await;
    let now = datetime!(2026-11-22 08:00 UTC);
    let board = datetime!(1970-01-01 00:00:04 UTC);
    store
        .ingest(&telemetry_in(1, 9, false, reading(now, 2.4)), now)
        .await
        .unwrap();
    let mut old = reading(board, 0.5);
    old.clock = Some(ClockFlag::Unsynced);
    let arrival = now + time::Duration::seconds(1);
    store
        .ingest(&telemetry_in(1, 2, true, old.clone()), arrival)
        .await
        .unwrap();
    let latest = &store.latest("gw-1").await.unwrap()[0];
    assert_eq!((latest.value.value, latest.value.ts), (Some(2.4), now));

    // But it is better than nothing for a point that has no value.
    old.point = "riser.pressure".into();
    store
        .ingest(&telemetry_in(1, 3, true, old), arrival)
        .await
        .unwrap();
    let latest = store.latest("gw-1").await.unwrap();
    assert_eq!(latest[0].point, "riser.pressure");
    assert_eq!(latest[0].value.value, Some(0.5));
    assert_eq!(latest[0].gateway_ts, Some(board));
}

#[tokio::test]
async fn stored_messages_become_epoch_zero_when_the_schema_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ingest.db");
    {
        // A database as the first schema left it.
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        let mut first = sqlx::migrate!("./migrations/sqlite");
        first.migrations = std::borrow::Cow::Owned(vec![first.migrations[0].clone()]);
        first.run(&pool).await.unwrap();
        for seq in [1, 2, 5] {
            sqlx::query(
                "INSERT INTO received (gateway, stream, seq, received_ms) VALUES ('gw-1', 'telemetry', $1, $2)",
            )
            .bind(seq)
            .bind(seq * 1000)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(telemetry_progress(&store).await, vec![(0, 5, 3, 2)]);
    let t0 = datetime!(2026-11-22 08:00 UTC);
    assert_eq!(
        store.ingest(&telemetry(2, t0, 2.0), t0).await.unwrap(),
        Outcome::Duplicate,
        "a payload without an epoch is epoch 0"
    );
    store.ingest(&telemetry(3, t0, 2.0), t0).await.unwrap();
    assert_eq!(telemetry_progress(&store).await, vec![(0, 5, 4, 1)]);
}

#[tokio::test]
async fn a_sqlite_store_commits_durably_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ingest.db")).await.unwrap();
    let mut conn = store.pool.acquire().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((mode.as_str(), sync, busy), ("wal", 2, 10_000));
}

#[tokio::test]
async fn readings_without_a_value_and_then_with_one_are_stored_on_every_back_end() {
    // sqlx's Any driver types a NULL float as float4 for PostgreSQL; a
    // statement first prepared with NULLs used to refuse real values.
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let unreachable = |ts| Reading {
        value: None,
        quality: Quality::Unreachable,
        ..reading(ts, 0.0)
    };
    for seq in 1..=3 {
        let at = t0 + time::Duration::seconds(seq as i64);
        let m = Message::Telemetry(Telemetry::new("gw-1", seq, vec![unreachable(at)]));
        store.ingest(&m, at).await.unwrap();
        store.ingest(&alarm(seq, 1.0, at, None), at).await.unwrap();
    }
    for seq in 4..=6 {
        let at = t0 + time::Duration::seconds(seq as i64);
        store.ingest(&telemetry(seq, at, 2.5), at).await.unwrap();
    }
    let history = store.history("gw-1", "tank.level").await.unwrap();
    let values: Vec<_> = history.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, [None, None, None, Some(2.5), Some(2.5), Some(2.5)]);
    let latest = store.latest("gw-1").await.unwrap();
    let level = latest.iter().find(|l| l.point == "tank.level").unwrap();
    assert_eq!(level.value.value, Some(2.5));
}
