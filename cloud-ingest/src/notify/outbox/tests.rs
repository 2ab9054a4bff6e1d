use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::App;
use crate::notify::channel::Target;
use crate::notify::route::Party;

const T0: OffsetDateTime = datetime!(2026-11-23 08:00 UTC);

/// One 60 m residential building (一类, 18 m³; its tank holds 23 m³ full)
/// whose three parties each have a WeCom
/// robot, rules that count a condition at once.
async fn app() -> (tempfile::TempDir, Arc<App>, Contacts) {
    const CSV: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m,management_unit,contractor,building_manager
B2,二号楼,梁平区,梁山街道,西平社区,residential,no,60,20,10,2.5,0.2,嘉禾物业,安泰维保,楼栋长002
";
    let (dir, app) = app_from(
        CSV,
        Some(crate::notify::link::Links::new(
            "a-test-secret-of-32-characters-at-least",
            "https://riser.example.cn",
            time::Duration::days(7),
        )),
    )
    .await;
    let robot = |name: &str| Party {
        name: name.into(),
        targets: vec![Target::WeCom {
            url: format!("https://qyapi.example/{name}"),
        }],
        lang: Default::default(),
    };
    let contacts = Contacts {
        party: vec![robot("嘉禾物业"), robot("安泰维保"), robot("楼栋长002")],
        fire_rescue: Vec::new(),
    };
    (dir, app, contacts)
}

/// The buildings of `csv` in a fresh store in a temp dir, rules that count
/// a condition at once.
async fn app_from(
    csv: &str,
    links: Option<crate::notify::link::Links>,
) -> (tempfile::TempDir, Arc<App>) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path()).await;
    let app = Arc::new(App {
        rules: crate::rules::Settings {
            tuning: crate::rules::Tuning::immediate(),
            ..crate::rules::Settings::default()
        },
        links,
        auth: crate::auth::AuthConfig {
            anonymous: Some(crate::auth::Role::Admin),
            ..Default::default()
        },
        ..App::new(
            Registry::new(crate::registry::parse_csv(csv).unwrap()).unwrap(),
            store,
        )
    });
    (dir, app)
}

/// The tank at `level` m (low below ~2.0) at `at`, stored and judged.
async fn tank(app: &App, seq: u64, level: f64, at: OffsetDateTime) {
    let m = crate::telemetry(
        "gw-B2",
        seq,
        at,
        &[("tank.level", level), ("riser.pressure", 0.3)],
    );
    app.store.ingest(&m, at).await.unwrap();
    crate::judge(app, Some(&["gw-B2"]), at).await.unwrap();
}

fn routing<'a>(app: &'a App, config: &'a RoutingConfig, contacts: &'a Contacts) -> Routing<'a> {
    Routing {
        registry: &app.registry,
        routing: config,
        contacts,
        reopen_quiet: time::Duration::minutes(30),
        rate_limit: crate::notify::RateLimit::default(),
    }
}

async fn hazard_id(app: &App) -> i64 {
    let (items, _) = crate::hazards::list(&app.store, &crate::hazards::Filter::default(), T0)
        .await
        .unwrap();
    items
        .iter()
        .find(|h| h.code == crate::rules::Code::TankVolumeLow)
        .map(|h| h.id)
        .expect("a tank item")
}

#[tokio::test]
async fn an_opened_item_is_planned_once_per_recipient_however_often_planning_runs() {
    let (_dir, app, contacts) = app().await;
    let config = RoutingConfig::default();
    tank(&app, 1, 0.5, T0).await;
    let first = plan(&app.store, &routing(&app, &config, &contacts), T0)
        .await
        .unwrap();
    assert_eq!(first.pending, 2, "urgent: contractor and building manager");
    let again = plan(&app.store, &routing(&app, &config, &contacts), T0)
        .await
        .unwrap();
    assert_eq!(again, Planned::default());
    let rows = of_hazard(&app.store, hazard_id(&app).await).await.unwrap();
    let mut roles: Vec<_> = rows.iter().map(|n| n.role.as_str()).collect();
    roles.sort();
    assert_eq!(roles, ["building_manager", "contractor"]);
    assert!(
        rows.iter()
            .all(|n| n.state == "pending" && n.channel == "wecom")
    );
}

#[tokio::test]
async fn two_planners_at_once_plan_each_transition_once() {
    let (_dir, app, contacts) = app().await;
    let config = RoutingConfig::default();
    tank(&app, 1, 0.5, T0).await;
    let r = routing(&app, &config, &contacts);
    let (a, b) = tokio::join!(plan(&app.store, &r, T0), plan(&app.store, &r, T0));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.pending + b.pending, 2, "{a:?} {b:?}");
    assert_eq!(
        of_hazard(&app.store, hazard_id(&app).await)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn an_item_back_soon_after_it_cleared_pages_no_one_again() {
    let (_dir, app, contacts) = app().await;
    let config = RoutingConfig::default();
    let r = routing(&app, &config, &contacts);
    tank(&app, 1, 0.5, T0).await;
    assert_eq!(plan(&app.store, &r, T0).await.unwrap().pending, 2);
    let later = T0 + time::Duration::minutes(5);
    tank(&app, 2, 2.3, later).await;
    let resolved = plan(&app.store, &r, later).await.unwrap();
    assert_eq!(resolved.pending, 2, "told it cleared, after the quiet time");
    let back = later + time::Duration::minutes(10);
    tank(&app, 3, 0.5, back).await;
    let reopened = plan(&app.store, &r, back).await.unwrap();
    assert_eq!((reopened.pending, reopened.suppressed), (0, 2));

    let rows = of_hazard(&app.store, hazard_id(&app).await).await.unwrap();
    let resolved: Vec<_> = rows.iter().filter(|n| n.action == "resolved").collect();
    assert!(
        resolved
            .iter()
            .all(|n| n.next_ms == to_ms(later + time::Duration::minutes(30))),
        "a clearing is sent only once it held for the quiet time: {resolved:?}"
    );
}

#[tokio::test]
async fn a_role_nobody_can_be_reached_at_is_reported_not_dropped_silently() {
    let (_dir, app, mut contacts) = app().await;
    contacts.party.retain(|p| p.name != "楼栋长002");
    let config = RoutingConfig::default();
    tank(&app, 1, 0.5, T0).await;
    let planned = plan(&app.store, &routing(&app, &config, &contacts), T0)
        .await
        .unwrap();
    assert_eq!(planned.pending, 1);
    assert!(
        planned
            .unreachable
            .iter()
            .any(|(_, b, role)| b == "B2" && *role == Role::BuildingManager),
        "{planned:?}"
    );
}

/// Requests a receiver got: headers and body.
type Got = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A local webhook receiver answering `status`, keeping what it got.
struct Receiver {
    url: String,
    got: Got,
    status: Arc<std::sync::atomic::AtomicU16>,
}

async fn receiver() -> Receiver {
    use axum::extract::State;
    type Shared = (Got, Arc<std::sync::atomic::AtomicU16>);
    async fn hook(
        State((got, status)): State<Shared>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        got.lock().unwrap().push((headers, body.to_vec()));
        axum::http::StatusCode::from_u16(status.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
    }
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((got.clone(), status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Receiver { url, got, status }
}

const SECRET: &str = "s3cret-of-the-contractor";

/// `app`'s contacts with the contractor on `url` instead of its robot.
fn on_webhook(mut contacts: Contacts, url: &str) -> Contacts {
    contacts.party.retain(|p| p.name != "楼栋长002");
    for p in &mut contacts.party {
        if p.name == "安泰维保" {
            p.targets = vec![Target::Webhook {
                url: url.into(),
                secret: SECRET.into(),
            }];
        }
    }
    contacts
}

/// An urgent item opened now and planned, the contractor on a local
/// webhook (the building manager unreachable): one row to send.
async fn opened_for_a_webhook() -> (
    tempfile::TempDir,
    Arc<App>,
    Receiver,
    crate::notify::channel::Channels,
    OffsetDateTime,
) {
    use crate::notify::channel::{Channels, ChannelsConfig};
    let (dir, app, contacts) = app().await;
    let hook = receiver().await;
    let contacts = on_webhook(contacts, &hook.url);
    let config = RoutingConfig::default();
    let channels = Channels::new(&ChannelsConfig::default()).unwrap();
    let now = OffsetDateTime::now_utc();
    tank(&app, 1, 0.5, now).await;
    plan(&app.store, &routing(&app, &config, &contacts), now)
        .await
        .unwrap();
    (dir, app, hook, channels, now)
}

#[tokio::test]
async fn an_opened_item_reaches_the_contractors_webhook_signed_once() {
    use crate::notify::channel::verify_webhook;
    use crate::notify::deliver::deliver_due;
    let (_dir, app, hook, channels, now) = opened_for_a_webhook().await;
    let done = deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
        .await
        .unwrap();
    assert_eq!(done.sent, 1, "{done:?}");
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
            .await
            .unwrap()
            .sent,
        0
    );

    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "exactly one message");
    let (headers, body) = &got[0];
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    assert!(verify_webhook(
        SECRET,
        &header("x-riser-timestamp"),
        body,
        &header("x-riser-signature")
    ));
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["building"]["name"], "二号楼");
    assert_eq!(json["code"], "tank_volume_low");
    assert_eq!(json["action"], "opened");
    let rows = of_hazard(&app.store, hazard_id(&app).await).await.unwrap();
    assert_eq!(header("x-riser-delivery"), format!("riser-{}", rows[0].id));
    assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("sent", 1));
}

#[tokio::test]
async fn a_refusing_webhook_fails_for_good_and_a_failing_one_is_retried_later() {
    use crate::notify::deliver::{backoff, deliver_due};
    let (_dir, app, hook, channels, now) = opened_for_a_webhook().await;

    hook.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let done = deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
        .await
        .unwrap();
    assert_eq!(done.retrying, 1, "{done:?}");
    let row = &of_hazard(&app.store, hazard_id(&app).await).await.unwrap()[0];
    assert_eq!(row.state, "pending");
    assert_eq!(row.next_ms, to_ms(now) + backoff(1).as_millis() as i64);
    assert!(
        row.last_error.as_deref().unwrap().contains("503"),
        "{row:?}"
    );
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
            .await
            .unwrap(),
        Default::default(),
        "not before its back-off"
    );

    hook.status.store(404, std::sync::atomic::Ordering::SeqCst);
    let later = now + time::Duration::minutes(1);
    let done = deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, later)
        .await
        .unwrap();
    assert_eq!(done.failed, 1, "{done:?}");
    let row = &of_hazard(&app.store, hazard_id(&app).await).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("failed", 2));
    assert_eq!(hook.got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_link_in_an_alert_acknowledges_the_item_as_its_recipient_on_post_only() {
    use crate::notify::deliver::deliver_due;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;
    let (_dir, app, hook, channels, now) = opened_for_a_webhook().await;
    deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
        .await
        .unwrap();
    let body = hook.got.lock().unwrap()[0].1.clone();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = json["acknowledge_url"].as_str().expect("a link").to_owned();
    let path = url
        .strip_prefix("https://riser.example.cn")
        .unwrap()
        .to_owned();
    let call = |method: &str, path: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        crate::api::router(app.clone()).oneshot(request)
    };
    let text = |response: axum::response::Response| async move {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };

    let shown = call("GET", &path).await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let page = text(shown).await;
    assert!(page.contains("确认收到（安泰维保）"), "{page}");
    let item = crate::hazards::get(&app.store, hazard_id(&app).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item.state,
        crate::hazards::State::Open,
        "a GET changes nothing"
    );

    let done = call("POST", &path).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let item = crate::hazards::get(&app.store, item.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.state, crate::hazards::State::Acknowledged);
    assert_eq!(
        item.acknowledged_by.as_deref(),
        Some("安泰维保（消息链接）")
    );
    assert_eq!(
        call("POST", &path).await.unwrap().status(),
        StatusCode::CONFLICT
    );

    let forged = path.replacen("/ack/", "/ack/9", 1);
    assert_eq!(
        call("GET", &forged).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

/// `n` buildings B00… of one contractor (安泰维保) on a local webhook.
async fn district(n: usize) -> (tempfile::TempDir, Arc<App>, Contacts, Receiver) {
    let mut csv = String::from(
        "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m,contractor\n",
    );
    for b in 0..n {
        csv.push_str(&format!(
            "B{b:02},{b}号楼,梁平区,梁山街道,西平社区,residential,no,60,20,10,2.5,0.2,安泰维保\n"
        ));
    }
    let (dir, app) = app_from(&csv, None).await;
    let hook = receiver().await;
    let contacts = Contacts {
        party: vec![Party {
            name: "安泰维保".into(),
            targets: vec![Target::Webhook {
                url: hook.url.clone(),
                secret: SECRET.into(),
            }],
            lang: Default::default(),
        }],
        fire_rescue: Vec::new(),
    };
    (dir, app, contacts, hook)
}

/// Every building's tank at `level`, stored and judged at `at`.
async fn every_tank(app: &App, n: usize, seq: u64, level: f64, at: OffsetDateTime) {
    let gateways: Vec<String> = (0..n).map(|b| format!("gw-B{b:02}")).collect();
    for gateway in &gateways {
        let m = crate::telemetry(
            gateway,
            seq,
            at,
            &[("tank.level", level), ("riser.pressure", 0.3)],
        );
        app.store.ingest(&m, at).await.unwrap();
    }
    let gateways: Vec<&str> = gateways.iter().map(String::as_str).collect();
    crate::judge(app, Some(&gateways), at).await.unwrap();
}

#[tokio::test]
async fn a_district_wide_outage_sends_the_contractor_a_digest_not_a_message_per_building() {
    use crate::notify::channel::{Channels, ChannelsConfig, verify_webhook};
    use crate::notify::deliver::deliver_due;
    const N: usize = 20;
    let (_dir, app, contacts, hook) = district(N).await;
    let config = RoutingConfig::default();
    let r = routing(&app, &config, &contacts);
    let channels = Channels::new(&ChannelsConfig::default()).unwrap();
    let now = OffsetDateTime::now_utc();
    every_tank(&app, N, 1, 0.5, now).await;

    let planned = plan(&app.store, &r, now).await.unwrap();
    assert_eq!((planned.pending, planned.digested), (5, 15), "{planned:?}");
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
            .await
            .unwrap()
            .sent,
        5
    );
    let after = now + time::Duration::seconds(59);
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, after)
            .await
            .unwrap()
            .sent,
        0,
        "the digest gathers for a minute"
    );
    let due = now + time::Duration::seconds(60);
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, due)
            .await
            .unwrap()
            .sent,
        1
    );

    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 6, "five messages and one digest");
    let (headers, body) = got.last().unwrap();
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    assert!(verify_webhook(
        SECRET,
        &header("x-riser-timestamp"),
        body,
        &header("x-riser-signature")
    ));
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["digest"], true);
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 15);
    let mut told: Vec<_> = got[..5]
        .iter()
        .map(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).unwrap()["hazard_id"].clone())
        .chain(items.iter().map(|i| i["hazard_id"].clone()))
        .map(|id| id.as_i64().unwrap())
        .collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(told.len(), N, "every building's item told once");
    let digested = list(
        &app.store,
        &Filter {
            state: Some("digested".into()),
            limit: 100,
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(digested.1, 15);
    let digest_id = digested.0[0].digest_id.expect("in a digest");
    assert_eq!(
        header("x-riser-delivery"),
        format!("riser-digest-{digest_id}")
    );
    let d = digest(&app.store, digest_id).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.items), ("sent", 15));
    let (status, served) = get_json(&app, &format!("/api/notifications/digests/{digest_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(served["items"].as_array().unwrap().len(), 15);
    assert_eq!(served["delivery_id"], format!("riser-digest-{digest_id}"));

    // Everything clears two minutes in: still over the limit, and the next
    // digest waits a window after the first.
    let cleared = now + time::Duration::minutes(2);
    every_tank(&app, N, 2, 2.3, cleared).await;
    let planned = plan(&app.store, &r, cleared).await.unwrap();
    assert_eq!((planned.pending, planned.digested), (0, N as u64));
    let second = list(
        &app.store,
        &Filter {
            state: Some("digested".into()),
            limit: 1,
            ..Filter::default()
        },
    )
    .await
    .unwrap()
    .0[0]
        .digest_id
        .unwrap();
    let d = digest(&app.store, second).await.unwrap().unwrap();
    assert_ne!(second, digest_id);
    assert_eq!(d.items, N as i64);
    assert_eq!(d.next_ms, to_ms(now + time::Duration::minutes(11)));
}

#[tokio::test]
async fn a_digest_claimed_for_sending_gathers_nothing_more() {
    use crate::notify::channel::{Channels, ChannelsConfig};
    use crate::notify::deliver::deliver_due;
    const N: usize = 8;
    let (_dir, app, contacts, hook) = district(N).await;
    let config = RoutingConfig::default();
    let r = routing(&app, &config, &contacts);
    let channels = Channels::new(&ChannelsConfig::default()).unwrap();
    let now = OffsetDateTime::now_utc();
    every_tank(&app, N - 1, 1, 0.5, now).await;
    assert_eq!(plan(&app.store, &r, now).await.unwrap().digested, 2);
    let due = now + time::Duration::seconds(60);
    deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, due)
        .await
        .unwrap();
    assert_eq!(hook.got.lock().unwrap().len(), 6);

    // The last building fails after the digest went: a new digest.
    let m = crate::telemetry(
        &format!("gw-B{:02}", N - 1),
        1,
        due,
        &[("tank.level", 0.5), ("riser.pressure", 0.3)],
    );
    app.store.ingest(&m, due).await.unwrap();
    let gateway = format!("gw-B{:02}", N - 1);
    crate::judge(&app, Some(&[gateway.as_str()]), due)
        .await
        .unwrap();
    assert_eq!(plan(&app.store, &r, due).await.unwrap().digested, 1);
    let (rows, _) = list(
        &app.store,
        &Filter {
            state: Some("digested".into()),
            limit: 100,
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    let mut digests: Vec<_> = rows.iter().filter_map(|n| n.digest_id).collect();
    digests.dedup();
    assert_eq!(digests.len(), 2, "{rows:?}");
    let first = digest(&app.store, digests[1]).await.unwrap().unwrap();
    assert_eq!((first.state.as_str(), first.items), ("sent", 2));
}

async fn get_json(app: &Arc<App>, uri: &str) -> (u16, serde_json::Value) {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;
    let response = crate::api::router(app.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_message_that_failed_for_good_is_listed_by_the_api_with_its_error() {
    use crate::notify::deliver::deliver_due;
    let (_dir, app, hook, channels, now) = opened_for_a_webhook().await;
    hook.status.store(410, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        deliver_due(&app, &channels, 12, crate::notify::deliver::LEASE, now)
            .await
            .unwrap()
            .failed,
        1
    );
    let id = hazard_id(&app).await;

    let (status, failed) = get_json(&app, "/api/notifications?state=failed").await;
    assert_eq!(status, 200);
    assert_eq!(failed["total"], 1);
    let item = &failed["items"][0];
    assert_eq!(item["hazard_id"], id);
    assert_eq!(
        (item["role"].as_str(), item["channel"].as_str()),
        (Some("contractor"), Some("webhook"))
    );
    assert!(
        item["last_error"].as_str().unwrap().contains("410"),
        "{item}"
    );
    assert!(
        !item.to_string().contains(&hook.url) && !item.to_string().contains(SECRET),
        "no address or secret served: {item}"
    );
    let (_, sent) = get_json(&app, "/api/notifications?state=sent").await;
    assert_eq!(sent["total"], 0);

    let (_, detail) = get_json(&app, &format!("/api/hazards/{id}")).await;
    assert_eq!(detail["notifications"][0]["state"], "failed");
    assert_eq!(
        detail["notifications"][0]["delivery_id"],
        format!("riser-{}", item["id"])
    );

    let (status, error) = get_json(&app, "/api/notifications?state=lost").await;
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().contains("pending"),
        "{error}"
    );
    assert_eq!(get_json(&app, "/api/notifications?limit=0").await.0, 400);
    assert_eq!(get_json(&app, "/api/notifications/digests/7").await.0, 404);
}
