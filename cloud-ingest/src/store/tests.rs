use super::*;
use riser_contract::{Reading, Telemetry, VERSION};
use time::macros::datetime;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ingest.db")).await.unwrap();
    (dir, store)
}

fn telemetry(seq: u64, ts: OffsetDateTime, level: f64) -> Message {
    Message::Telemetry(Telemetry {
        v: VERSION,
        gateway: "gw-1".into(),
        seq,
        readings: vec![Reading {
            point: "tank.level".into(),
            ts,
            value: Some(level),
            unit: Some("m".into()),
            quality: Quality::Good,
            exception: None,
        }],
    })
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

#[tokio::test]
async fn verdict_time_moves_only_when_the_verdict_changes() {
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let ok = Verdict {
        status: Status::Ok,
        reasons: vec![],
    };
    store.save_verdict("B1", &ok, t0).await.unwrap();
    store
        .save_verdict("B1", &ok, t0 + time::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(store.verdicts().await.unwrap()["B1"].updated_at, t0);
}

#[tokio::test]
async fn an_alarm_event_becomes_the_points_latest_value() {
    use riser_contract::{Event, EventKind, Events};
    let (_dir, store) = store().await;
    let t0 = datetime!(2026-11-22 08:00 UTC);
    let event = |seq, value, ts| {
        Message::Events(Events {
            v: VERSION,
            gateway: "gw-1".into(),
            seq,
            events: vec![Event {
                kind: EventKind::StateChanged,
                point: "pumps.fire_fault".into(),
                ts,
                value: Some(value),
                quality: Quality::Good,
            }],
        })
    };
    store.ingest(&event(1, 1.0, t0), t0).await.unwrap();
    // A late, older event does not undo the newer state.
    store
        .ingest(&event(2, 0.0, t0 - time::Duration::minutes(1)), t0)
        .await
        .unwrap();
    let latest = store.latest("gw-1").await.unwrap();
    assert_eq!(latest[0].point, "pumps.fire_fault");
    assert_eq!((latest[0].value.value, latest[0].value.ts), (Some(1.0), t0));
}
