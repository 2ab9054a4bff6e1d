use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::App;
use crate::metrics::Metrics;
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
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path()).await;
    let app = Arc::new(App {
        registry: Registry::new(crate::registry::parse_csv(CSV).unwrap()).unwrap(),
        store,
        influx: None,
        metrics: Metrics::default(),
        rules: crate::rules::Settings {
            tuning: crate::rules::Tuning::immediate(),
            ..crate::rules::Settings::default()
        },
        hazards: crate::hazards::HazardsConfig::default(),
        links: Some(crate::notify::link::Links::new(
            "a-test-secret-of-32-characters-at-least",
            "https://riser.example.cn",
            time::Duration::days(7),
        )),
    });
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
    let done = deliver_due(&app, &channels, 12, now).await.unwrap();
    assert_eq!(done.sent, 1, "{done:?}");
    assert_eq!(deliver_due(&app, &channels, 12, now).await.unwrap().sent, 0);

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
    let done = deliver_due(&app, &channels, 12, now).await.unwrap();
    assert_eq!(done.retrying, 1, "{done:?}");
    let row = &of_hazard(&app.store, hazard_id(&app).await).await.unwrap()[0];
    assert_eq!(row.state, "pending");
    assert_eq!(row.next_ms, to_ms(now) + backoff(1).as_millis() as i64);
    assert!(
        row.last_error.as_deref().unwrap().contains("503"),
        "{row:?}"
    );
    assert_eq!(
        deliver_due(&app, &channels, 12, now).await.unwrap(),
        Default::default(),
        "not before its back-off"
    );

    hook.status.store(404, std::sync::atomic::Ordering::SeqCst);
    let later = now + time::Duration::minutes(1);
    let done = deliver_due(&app, &channels, 12, later).await.unwrap();
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
    deliver_due(&app, &channels, 12, now).await.unwrap();
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
