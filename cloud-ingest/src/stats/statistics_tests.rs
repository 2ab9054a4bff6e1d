//! The statistics against a real store (SQLite, or PostgreSQL with
//! `RISER_TEST_DATABASE_URL`), from hazard items made as in service: by
//! ingesting readings, judging, and closing (销号) as a person.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::App;
use crate::hazards::{self, Filter, State};

/// Two towns of 梁平区 (梁山街道: A1 in 西平社区, A2 in 东门社区; 双桂街道: A3
/// and A4 in 双桂社区) and one town of 万州区 (W1). All 40 m residential
/// (二类, 12 m³ required; the tank holds 6.4 m³ at 1.0 m).
const CSV: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m
A1,一号楼,梁平区,梁山街道,西平社区,residential,no,40,13,8,2.5,0.2
A2,二号楼,梁平区,梁山街道,东门社区,residential,no,40,13,8,2.5,0.2
A3,三号楼,梁平区,双桂街道,双桂社区,residential,no,40,13,8,2.5,0.2
A4,四号楼,梁平区,双桂街道,双桂社区,residential,no,40,13,8,2.5,0.2
W1,太白一号楼,万州区,高笋塘街道,太白社区,residential,no,40,13,8,2.5,0.2
";

const LOW: f64 = 1.0;
const FULL: f64 = 2.3;

/// When the tests ask (CST): after everything in [`story`].
const NOW: OffsetDateTime = datetime!(2026-12-05 12:00 +8);

/// Sequence numbers, unique across gateways and tests.
static SEQ: AtomicU64 = AtomicU64::new(100);

/// The district's buildings in a fresh store; conditions count at once;
/// anyone may ask the API (as admin).
pub(crate) async fn district() -> (tempfile::TempDir, Arc<App>) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path()).await;
    let registry =
        crate::Registry::new(crate::registry::parse_csv(CSV).unwrap()).expect("a valid registry");
    let app = Arc::new(App {
        rules: crate::rules::Settings {
            tuning: crate::rules::Tuning::immediate(),
            ..crate::rules::Settings::default()
        },
        auth: crate::auth::AuthConfig {
            anonymous: Some(crate::auth::Role::Admin),
            ..crate::auth::AuthConfig::default()
        },
        ..App::new(registry, store)
    });
    (dir, app)
}

/// `building`'s tank at `level` m (and a good static pressure), read and
/// judged at `at`.
async fn tank(app: &App, building: &str, level: f64, at: OffsetDateTime) {
    let gateway = format!("gw-{building}");
    let m = crate::telemetry(
        &gateway,
        SEQ.fetch_add(1, Ordering::Relaxed),
        at,
        &[("tank.level", level), ("riser.pressure", 0.3)],
    );
    app.store.ingest(&m, at).await.unwrap();
    crate::judge(app, Some(&[gateway.as_str()]), at)
        .await
        .unwrap();
}

/// A person closes (销号) `building`'s one resolved item at `at`.
async fn close_resolved(app: &App, building: &str, at: OffsetDateTime) {
    let filter = Filter {
        building: Some(building.into()),
        states: vec![State::Resolved],
        ..Filter::default()
    };
    let (items, _) = hazards::list(&app.store, &filter, at).await.unwrap();
    assert_eq!(items.len(), 1, "{items:#?}");
    hazards::close(&app.store, items[0].id, "李工", "补水阀已更换", at)
        .await
        .unwrap();
}

/// What the tests count (times CST, every one moved by `shift`):
///
/// | when | what | item |
/// |---|---|---|
/// | 10-31 23:30 | A1's tank low | a1 recorded in October |
/// | 11-01 00:30 | A2's tank low, never fixed | a2 recorded in November, deadline 11-02 00:30 |
/// | 11-02 10:00, 11-03 09:00 | A1 full; a1 closed | a1 rectified in November |
/// | 11-05 10:00 | W1 heard from without tank or pressure | `monitoring` items only |
/// | 11-10 08:00, 12:00 | A3 low, then full | a3 resolved, never closed |
/// | 11-20 08:00, 09:00 | A1 low, then full | a1b recorded in November |
/// | 12-01 00:10 | a1b closed | rectified in December |
/// | 12-02 08:00 | A3 low again | a3 reopened, past its deadline |
///
/// A4 is never heard from.
pub(crate) async fn story(app: &App, shift: Duration) {
    let t = |at: OffsetDateTime| at + shift;
    tank(app, "A1", LOW, t(datetime!(2026-10-31 23:30 +8))).await;
    tank(app, "A2", LOW, t(datetime!(2026-11-01 00:30 +8))).await;
    tank(app, "A1", FULL, t(datetime!(2026-11-02 10:00 +8))).await;
    close_resolved(app, "A1", t(datetime!(2026-11-03 09:00 +8))).await;
    let w1 = t(datetime!(2026-11-05 10:00 +8));
    crate::heard_from(app, "gw-W1", w1).await;
    crate::judge(app, Some(&["gw-W1"]), w1).await.unwrap();
    tank(app, "A3", LOW, t(datetime!(2026-11-10 08:00 +8))).await;
    tank(app, "A3", FULL, t(datetime!(2026-11-10 12:00 +8))).await;
    tank(app, "A1", LOW, t(datetime!(2026-11-20 08:00 +8))).await;
    tank(app, "A1", FULL, t(datetime!(2026-11-20 09:00 +8))).await;
    close_resolved(app, "A1", t(datetime!(2026-12-01 00:10 +8))).await;
    tank(app, "A3", LOW, t(datetime!(2026-12-02 08:00 +8))).await;
}

fn month(text: &str) -> Month {
    Month::parse(text).unwrap()
}

fn request(text: &str, level: Level) -> Request {
    Request {
        month: month(text),
        level,
        district: None,
        town: None,
    }
}

/// `[in_scope, monitored, failing_now, opened, rectified, found_so_far,
/// rectified_so_far, overdue]`.
fn numbers(c: &Counts) -> [u64; 8] {
    [
        c.in_scope,
        c.monitored,
        c.failing_now,
        c.opened,
        c.rectified,
        c.found_so_far,
        c.rectified_so_far,
        c.overdue,
    ]
}

/// Each row's place and numbers.
fn table(report: &Report) -> Vec<(String, [u64; 8])> {
    report
        .rows
        .iter()
        .map(|r| {
            let place = match &r.community {
                Some(c) => format!("{}/{}/{c}", r.district, r.town),
                None => format!("{}/{}", r.district, r.town),
            };
            (place, numbers(&r.counts))
        })
        .collect()
}

async fn everything(app: &App, request: &Request, now: OffsetDateTime) -> Report {
    report(&app.store, app.registry.buildings(), request, now)
        .await
        .unwrap()
}

fn close_to(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn a_month_runs_from_midnight_to_midnight_china_standard_time() {
    let november = month("2026-11");
    assert_eq!(november.start(), datetime!(2026-10-31 16:00 UTC));
    assert_eq!(november.end(), datetime!(2026-11-30 16:00 UTC));
    assert_eq!(Month::containing(datetime!(2026-10-31 16:00 UTC)), november);
    assert_eq!(
        Month::containing(datetime!(2026-10-31 15:59:59.999 UTC)),
        month("2026-10")
    );
    assert_eq!(month("2026-12").next().to_string(), "2027-01");
    assert_eq!(month("2026-12").end(), datetime!(2027-01-01 00:00 +8));
}

#[test]
fn a_month_must_be_written_yyyy_mm() {
    for bad in [
        "2026-13",
        "2026-00",
        "abc",
        "2026-1",
        "26-11",
        "2026-11-01",
        "",
        "２０２６-11",
        "+026-11",
        "9999-12",
    ] {
        assert!(
            matches!(Month::parse(bad), Err(StatsError::BadMonth(m)) if m == bad),
            "{bad}"
        );
    }
    assert_eq!(month("2026-09").to_string(), "2026-09");
}

#[test]
fn the_rate_is_rectified_so_far_over_found_so_far_and_null_when_nothing_was_found() {
    let mut counts = Counts::default();
    assert_eq!(counts.rate(), None, "nothing found: no rate, not 0 or 100%");
    counts.found_so_far = 3;
    assert_eq!(counts.rate(), Some(0.0));
    counts.rectified_so_far = 1;
    assert!(close_to(counts.rate(), 1.0 / 3.0));
    counts.rectified_so_far = 3;
    assert_eq!(counts.rate(), Some(1.0));
}

#[tokio::test]
async fn a_month_counts_what_was_found_and_closed_in_it_by_china_standard_time() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;

    let november = everything(&app, &request("2026-11", Level::Town), NOW).await;
    assert_eq!(november.as_of, datetime!(2026-12-01 00:00 +8), "its end");
    assert_eq!(
        table(&november),
        [
            // a2 and a1b opened (a1 at 23:30 on 10-31 was October's); a1
            // closed; a2 past its deadline; A2 still failing.
            ("梁平区/梁山街道".into(), [2, 2, 1, 2, 1, 3, 1, 1]),
            // a3 resolved by the month's end: neither rectified nor
            // overdue. A3 fails now (since 12-02); A4 was never heard from.
            ("梁平区/双桂街道".into(), [2, 1, 1, 1, 0, 1, 0, 0]),
            ("万州区/高笋塘街道".into(), [1, 1, 0, 0, 0, 0, 0, 0]),
        ]
    );
    assert!(close_to(november.rows[0].rate, 1.0 / 3.0));
    assert_eq!(november.rows[1].rate, Some(0.0));
    assert_eq!(november.rows[2].rate, None);
    assert_eq!(numbers(&november.total.counts), [5, 4, 2, 3, 1, 4, 1, 1]);
    assert!(close_to(november.total.rate, 0.25));

    let october = everything(&app, &request("2026-10", Level::Town), NOW).await;
    assert_eq!(
        numbers(&october.rows[0].counts)[3..],
        [1, 0, 1, 0, 0],
        "a1, recorded at 23:30 CST on the last evening, is October's; its deadline was in November"
    );
    assert_eq!(numbers(&october.total.counts)[3..], [1, 0, 1, 0, 0]);
}

#[tokio::test]
async fn an_item_closed_just_after_midnight_cst_is_rectified_in_the_new_month() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    // a1b was closed at 00:10 CST on 12-01, 16:10 UTC on 11-30.
    let december = everything(&app, &request("2026-12", Level::Town), NOW).await;
    let lsh = &december.rows[0];
    assert_eq!(lsh.town, "梁山街道");
    assert_eq!(
        (
            lsh.counts.opened,
            lsh.counts.rectified,
            lsh.counts.found_so_far,
            lsh.counts.rectified_so_far
        ),
        (0, 1, 3, 2)
    );
    assert!(close_to(lsh.rate, 2.0 / 3.0));
}

#[tokio::test]
async fn an_item_resolved_at_the_cut_off_was_not_overdue_though_it_reopened_since() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    let a3 = hazards::list(
        &app.store,
        &Filter {
            building: Some("A3".into()),
            ..Filter::default()
        },
        NOW,
    )
    .await
    .unwrap()
    .0;
    assert_eq!(
        (a3.len(), a3[0].state, a3[0].resolved_at, a3[0].reopened),
        (1, State::Open, None, 1),
        "reopened on 12-02: nothing on the item itself says it was resolved on 11-30"
    );
    let november = everything(&app, &request("2026-11", Level::Town), NOW).await;
    assert_eq!(november.rows[1].town, "双桂街道");
    assert_eq!(november.rows[1].counts.overdue, 0);
    let december = everything(&app, &request("2026-12", Level::Town), NOW).await;
    assert_eq!(
        december.rows[1].counts.overdue, 1,
        "open again, its deadline (11-11) long past"
    );
    assert_eq!(december.rows[1].counts.opened, 0, "reopened, not new");
}

#[tokio::test]
async fn the_current_month_is_cut_off_at_the_moment_of_asking() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    let just_after_midnight = datetime!(2026-12-01 00:05 +8);
    let early = everything(&app, &request("2026-12", Level::Town), just_after_midnight).await;
    assert_eq!(early.as_of, just_after_midnight);
    assert_eq!(
        numbers(&early.rows[0].counts)[3..],
        [0, 0, 3, 1, 1],
        "a1b is not closed yet at 00:05; a2 is overdue now"
    );
    let later = everything(&app, &request("2026-12", Level::Town), NOW).await;
    assert_eq!(later.as_of, NOW);
    assert_eq!(later.rows[0].counts.rectified, 1);
}

#[tokio::test]
async fn monitoring_interruptions_are_not_counted_as_hazards() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    let (w1, _) = hazards::list(
        &app.store,
        &Filter {
            building: Some("W1".into()),
            ..Filter::default()
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(
        !w1.is_empty() && w1.iter().all(|h| h.severity == Severity::Monitoring),
        "W1 has items, all of them 监测中断: {w1:#?}"
    );
    let november = everything(&app, &request("2026-11", Level::Town), NOW).await;
    let wz = &november.rows[2];
    assert_eq!(wz.district, "万州区");
    assert_eq!(
        (wz.counts.opened, wz.counts.found_so_far, wz.rate),
        (0, 0, None)
    );
}

#[tokio::test]
async fn only_the_buildings_given_are_counted_and_the_filters_narrow_them_further() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    // A user who may see 梁山街道 only (roles decide what is given).
    let seen = app
        .registry
        .buildings()
        .iter()
        .filter(|b| b.town == "梁山街道");
    let scoped = report(&app.store, seen, &request("2026-11", Level::Town), NOW)
        .await
        .unwrap();
    assert_eq!(
        table(&scoped),
        [("梁平区/梁山街道".into(), [2, 2, 1, 2, 1, 3, 1, 1])]
    );
    assert_eq!(scoped.total.counts, scoped.rows[0].counts);

    let wanzhou = Request {
        district: Some("万州区".into()),
        ..request("2026-11", Level::Town)
    };
    let only = everything(&app, &wanzhou, NOW).await;
    assert_eq!(
        table(&only),
        [("万州区/高笋塘街道".into(), [1, 1, 0, 0, 0, 0, 0, 0])]
    );

    let shuanggui = Request {
        town: Some("双桂街道".into()),
        ..request("2026-11", Level::Community)
    };
    let communities = everything(&app, &shuanggui, NOW).await;
    assert_eq!(
        table(&communities),
        [("梁平区/双桂街道/双桂社区".into(), [2, 1, 1, 1, 0, 1, 0, 0])]
    );
}

#[tokio::test]
async fn per_community_rows_follow_the_registry_and_add_up_to_the_towns() {
    let (_dir, app) = district().await;
    story(&app, Duration::ZERO).await;
    let by_community = everything(&app, &request("2026-11", Level::Community), NOW).await;
    assert_eq!(
        table(&by_community),
        [
            ("梁平区/梁山街道/西平社区".into(), [1, 1, 0, 1, 1, 2, 1, 0]),
            ("梁平区/梁山街道/东门社区".into(), [1, 1, 1, 1, 0, 1, 0, 1]),
            ("梁平区/双桂街道/双桂社区".into(), [2, 1, 1, 1, 0, 1, 0, 0]),
            (
                "万州区/高笋塘街道/太白社区".into(),
                [1, 1, 0, 0, 0, 0, 0, 0]
            ),
        ]
    );
    let by_town = everything(&app, &request("2026-11", Level::Town), NOW).await;
    assert_eq!(by_community.total, by_town.total);
}

#[tokio::test]
async fn a_month_that_has_not_begun_is_refused() {
    let (_dir, app) = district().await;
    let next = Month::containing(NOW).next();
    let refused = report(
        &app.store,
        app.registry.buildings(),
        &request(&next.to_string(), Level::Town),
        NOW,
    )
    .await;
    assert!(
        matches!(&refused, Err(StatsError::NotBegun(m)) if *m == next),
        "{refused:?}"
    );
}
