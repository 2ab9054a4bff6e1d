use std::collections::HashSet;
use std::time::Duration;

use riser_contract::{ClockFlag, Event, EventKind, Message, Quality, Reading, Stream};
use time::OffsetDateTime;

use super::*;

fn options() -> OutboxOptions {
    OutboxOptions {
        compress: false,
        ..OutboxOptions::new("gw-1")
    }
}

async fn outbox_with(options: OutboxOptions) -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db"), options)
        .await
        .unwrap();
    (dir, outbox)
}

fn reading(point: &str, ms: i64, value: f64) -> Reading {
    Reading {
        point: point.into(),
        ts: riser_contract::from_unix_ms(ms).unwrap(),
        value: Some(value),
        unit: None,
        quality: Quality::Good,
        exception: None,
        clock: None,
    }
}

fn event(point: &str, value: f64) -> Event {
    Event {
        kind: EventKind::StateChanged,
        point: point.into(),
        ts: OffsetDateTime::now_utc(),
        value: Some(value),
        quality: Quality::Good,
        clock: None,
    }
}

const T0: i64 = 1_795_334_400_000;

fn decode(entry: &Entry) -> Message {
    riser_contract::decode(&riser_contract::topic("gw-1", entry.stream), &entry.payload).unwrap()
}

fn telemetry(entry: &Entry) -> riser_contract::Telemetry {
    match decode(entry) {
        Message::Telemetry(t) => t,
        other => panic!("not telemetry: {other:?}"),
    }
}

#[tokio::test]
async fn events_overtake_live_telemetry_which_overtakes_the_backlog() {
    let (_dir, outbox) = outbox_with(options()).await;
    outbox
        .append_readings(vec![reading("tank.level", T0, 3.0)], None)
        .await
        .unwrap();
    let live_from = outbox.staged_mark().await.unwrap();
    outbox
        .append_readings(vec![reading("tank.level", T0 + 60_000, 2.9)], None)
        .await
        .unwrap();
    outbox
        .append_events(vec![event("panel.fire_alarm", 1.0)])
        .await
        .unwrap();

    let live = outbox.seal(live_from, true, 10).await.unwrap();
    assert!(!live.replay);
    let backlog = outbox.seal(live_from, true, 10).await.unwrap();
    assert!(backlog.replay);
    assert_eq!(outbox.seal(live_from, true, 10).await.unwrap().messages, 0);

    let next = outbox.next(10, &HashSet::new()).await.unwrap();
    let order: Vec<(Stream, bool, Option<f64>)> = next
        .iter()
        .map(|e| match decode(e) {
            Message::Events(m) => (Stream::Events, m.replay, m.events[0].value),
            Message::Telemetry(t) => (Stream::Telemetry, t.replay, t.readings[0].value),
            Message::Status(_) => unreachable!(),
        })
        .collect();
    assert_eq!(
        order,
        [
            (Stream::Events, false, Some(1.0)),
            (Stream::Telemetry, false, Some(2.9)),
            (Stream::Telemetry, true, Some(3.0)),
        ]
    );
    // The backlog keeps its original time.
    assert_eq!(
        telemetry(&next[2]).readings[0].ts,
        riser_contract::from_unix_ms(T0).unwrap()
    );
}

#[tokio::test]
async fn sealing_batches_cycles_into_numbered_messages_of_bounded_size() {
    let (_dir, outbox) = outbox_with(OutboxOptions {
        max_readings_per_message: 4,
        ..options()
    })
    .await;
    for cycle in 0..5 {
        let readings = (0..2)
            .map(|p| reading(&format!("p.{p}"), T0 + cycle * 1000, cycle as f64))
            .collect();
        outbox.append_readings(readings, None).await.unwrap();
    }
    let sealed = outbox.seal(1, true, 10).await.unwrap();
    assert_eq!((sealed.messages, sealed.readings), (3, 10));
    let next = outbox.next(10, &HashSet::new()).await.unwrap();
    let shape: Vec<(u64, usize)> = next
        .iter()
        .map(|e| (e.seq, telemetry(e).readings.len()))
        .collect();
    assert_eq!(shape, [(1, 4), (2, 4), (3, 2)]);
    assert!(
        next.iter()
            .all(|e| telemetry(e).epoch == outbox.epoch() && outbox.epoch() != 0)
    );
}

#[tokio::test]
async fn only_acknowledged_messages_leave_and_sequences_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = Outbox::open(&path, options()).await.unwrap();
    let epoch = outbox.epoch();
    outbox.append_events(vec![event("a.b", 1.0)]).await.unwrap();
    outbox.append_events(vec![event("a.b", 0.0)]).await.unwrap();
    let first = outbox.next(1, &HashSet::new()).await.unwrap().remove(0);
    let skip = HashSet::from([first.id]);
    assert_eq!(outbox.next(10, &skip).await.unwrap()[0].seq, 2);
    outbox.acknowledge(&[first.id]).await.unwrap();
    outbox.close().await;

    let reopened = Outbox::open(&path, options()).await.unwrap();
    assert_eq!(reopened.epoch(), epoch);
    assert_eq!(reopened.depth().await.unwrap(), 1);
    assert_eq!(
        reopened
            .append_events(vec![event("a.b", 1.0)])
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn concurrent_writes_share_commits_and_all_arrive() {
    let (_dir, outbox) = outbox_with(options()).await;
    let writers: Vec<_> = (0..20)
        .map(|w| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                for cycle in 0..10 {
                    outbox
                        .append_readings(vec![reading(&format!("w.{w}"), T0 + cycle, 1.0)], None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staged")
        .fetch_one(&outbox.pool)
        .await
        .unwrap();
    let (health, _) = outbox.health(T0).await.unwrap();
    assert_eq!(health.readings, 200);
    assert!(rows < 200, "every write had its own commit ({rows} rows)");
}

#[tokio::test]
async fn a_full_outbox_thins_old_telemetry_and_keeps_every_event() {
    let (_dir, outbox) = outbox_with(OutboxOptions {
        max_bytes: 256 * 1024,
        thin_interval: Duration::from_secs(300),
        ..options()
    })
    .await;
    let mut events = 0;
    let mut written = 0u64;
    // Ten points every 10 s for a day: far more than 256 KiB.
    for cycle in 0..8640i64 {
        let readings: Vec<_> = (0..10)
            .map(|p| {
                reading(
                    &format!("dev.p{p}"),
                    T0 + cycle * 10_000,
                    (cycle % 7) as f64,
                )
            })
            .collect();
        written += readings.len() as u64;
        outbox.append_readings(readings, None).await.unwrap();
        if cycle % 500 == 0 {
            outbox
                .append_events(vec![event("panel.fire_alarm", (cycle % 2) as f64)])
                .await
                .unwrap();
            events += 1;
        }
    }
    let (health, _) = outbox.health(T0).await.unwrap();
    assert!(health.thinned > 0, "{health:?}");
    assert!(
        health.bytes <= health.limit_bytes,
        "{} bytes over the limit {}",
        health.bytes,
        health.limit_bytes
    );
    assert_eq!(health.events, events, "every event is kept");
    assert_eq!(
        health.readings + health.thinned + health.dropped,
        written,
        "every reading is kept, thinned or dropped, and counted"
    );
}

#[test]
fn thinning_keeps_one_reading_per_point_and_quality_per_interval() {
    let mut readings: Vec<_> = (0..10)
        .flat_map(|i| {
            [
                reading("a.level", T0 + i * 60_000, i as f64),
                reading("a.pressure", T0 + i * 60_000, i as f64),
            ]
        })
        .collect();
    let mut fault = reading("a.level", T0 + 90_000, 0.0);
    fault.quality = Quality::SensorFault;
    readings.push(fault);
    let kept = thin(readings, Duration::from_secs(300));
    let level: Vec<_> = kept
        .iter()
        .filter(|r| r.point == "a.level")
        .map(|r| (r.value, r.quality))
        .collect();
    // T0 is on a 5-minute boundary: minutes 0-4 and 5-9 are two buckets.
    assert_eq!(
        level,
        [
            (Some(0.0), Quality::Good),
            (Some(5.0), Quality::Good),
            (Some(0.0), Quality::SensorFault)
        ]
    );
    assert_eq!(kept.len(), 5);
}

#[tokio::test]
async fn held_readings_wait_for_the_clock_and_are_restamped() {
    let (_dir, outbox) = outbox_with(options()).await;
    // Taken 5 s and 3 s after boot, on a board that believes it is 1970.
    outbox
        .append_readings(
            vec![
                reading("t.level", 5_000, 1.0),
                reading("t.level", 3_000, 1.1),
            ],
            Some("boot-a".into()),
        )
        .await
        .unwrap();
    outbox
        .append_readings(
            vec![reading("t.level", 4_000, 9.0)],
            Some("boot-old".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        outbox.seal(1, true, 10).await.unwrap().messages,
        0,
        "held rows are not sent"
    );
    assert_eq!(outbox.health(T0).await.unwrap().1, 3);

    // The clock is set at boot-clock 65 s: wall time T0.
    assert_eq!(outbox.restamp("boot-a", T0, 65_000).await.unwrap(), 3);
    outbox.seal(1, true, 10).await.unwrap();
    let sent = outbox.next(10, &HashSet::new()).await.unwrap();
    let readings: Vec<_> = sent
        .iter()
        .flat_map(|e| telemetry(e).readings)
        .map(|r| (riser_contract::unix_ms(r.ts), r.clock))
        .collect();
    assert!(readings.contains(&(T0 - 60_000, Some(ClockFlag::Restamped))));
    assert!(readings.contains(&(T0 - 62_000, Some(ClockFlag::Restamped))));
    assert!(readings.contains(&(4_000, Some(ClockFlag::Unsynced))));
}

#[tokio::test]
async fn a_corrupt_database_is_set_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = Outbox::open(&path, options()).await.unwrap();
    let old_epoch = outbox.epoch();
    outbox.append_events(vec![event("a.b", 1.0)]).await.unwrap();
    outbox.close().await;
    // Overwrite the middle of the file, header intact.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[100..len] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("outbox.db-wal"));

    let fresh = Outbox::open(&path, options()).await.unwrap();
    assert_ne!(fresh.epoch(), old_epoch, "a fresh sequence space");
    assert_eq!(fresh.depth().await.unwrap(), 0);
    assert_eq!(
        fresh.append_events(vec![event("a.b", 1.0)]).await.unwrap(),
        1
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.starts_with("outbox.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let fresh = Outbox::open(&path, options()).await.unwrap();
    assert_eq!(
        fresh.append_events(vec![event("a.b", 1.0)]).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_dead_letter_leaves_the_queue_but_stays_on_disk() {
    let (_dir, outbox) = outbox_with(options()).await;
    outbox.append_events(vec![event("a.b", 1.0)]).await.unwrap();
    outbox.append_events(vec![event("a.b", 0.0)]).await.unwrap();
    let first = outbox.next(1, &HashSet::new()).await.unwrap().remove(0);
    outbox.dead_letter(first.id, "too large").await.unwrap();
    assert_eq!(outbox.next(10, &HashSet::new()).await.unwrap()[0].seq, 2);
    let kept: (i64, String) = sqlx::query_as("SELECT seq, reason FROM dead_letter")
        .fetch_one(&outbox.pool)
        .await
        .unwrap();
    assert_eq!(kept, (1, "too large".to_owned()));
    assert_eq!(outbox.dead_letters().await.unwrap(), 1);
}

#[tokio::test]
async fn a_full_disk_fails_writes_without_losing_what_is_stored_and_recovers() {
    let (_dir, outbox) = outbox_with(options()).await;
    outbox
        .append_readings(vec![reading("t.level", T0, 1.0)], None)
        .await
        .unwrap();
    outbox.append_events(vec![event("a.b", 1.0)]).await.unwrap();
    // The file may not grow: what SQLite sees on a full disk.
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&outbox.pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {pages}"
    )))
    .execute(&outbox.pool)
    .await
    .unwrap();
    let big: Vec<_> = (0..20_000)
        .map(|i| reading(&format!("p.{i}"), T0 + i, i as f64))
        .collect();
    let mut events = vec![event("panel.fire_alarm", 1.0)];
    let error = crate::acquire::record(&outbox, &mut events, big.clone(), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("full"), "{error}");
    let (health, _) = outbox.health(T0).await.unwrap();
    assert_eq!(
        (health.readings, health.events),
        (1, 1),
        "stored data intact"
    );

    // Space again: the same cycle's events go with the next write.
    sqlx::query("PRAGMA max_page_count = 1073741823")
        .execute(&outbox.pool)
        .await
        .unwrap();
    crate::acquire::record(&outbox, &mut events, big, None)
        .await
        .unwrap();
    assert!(events.is_empty(), "the kept events were written");
    let (health, _) = outbox.health(T0).await.unwrap();
    assert_eq!((health.readings, health.events), (20_001, 2));
}
