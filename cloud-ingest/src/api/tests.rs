use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use riser_contract::{Health, Message, Reading, Telemetry, VERSION};
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, Arc<App>) {
    crate::test_app().await
}

async fn get_json(app: &Arc<App>, uri: &str) -> (StatusCode, serde_json::Value) {
    let res = router(app.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A good reading of `point` at `ts`.
fn reading_at(point: &str, ts: OffsetDateTime, value: f64) -> Reading {
    Reading {
        point: point.into(),
        ts,
        value: Some(value),
        unit: None,
        quality: Quality::Good,
        exception: None,
        clock: None,
    }
}

async fn report(app: &Arc<App>, level: f64, pressure: f64) {
    let now = OffsetDateTime::now_utc();
    let reading = |point: &str, value: f64| reading_at(point, now, value);
    let m = Message::Telemetry(Telemetry::new(
        "gw-B2",
        1,
        vec![
            reading("tank.level", level),
            reading("riser.pressure", pressure),
        ],
    ));
    app.store.ingest(&m, now).await.unwrap();
    crate::judge(app, Some(&["gw-B2"]), now).await.unwrap();
}

#[tokio::test]
async fn failing_buildings_come_first_with_reasons_citing_the_clause() {
    let (_dir, app) = app().await;
    report(&app, 1.0, 0.08).await; // 8 × 0.8 = 6.4 m³ < 12 m³
    let (status, body) = get_json(&app, "/api/buildings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["id"], "B2");
    assert_eq!(body[0]["status"], "failing");
    let reason = &body[0]["reasons"][0];
    assert_eq!(reason["code"], "tank_volume_low");
    assert_eq!(reason["value"], 6.4);
    assert_eq!(reason["required"], 12.0);
    assert_eq!(reason["clause"], "GB 50974-2014 5.2.1");
    assert_eq!(reason["point"], "tank.level");
    assert_eq!(reason["current"], true, "still true now: it may page");
    assert!(reason["since"].is_string(), "when it began: {reason}");
    assert!(reason["message"].as_str().unwrap().contains("高位消防水箱"));
    assert_eq!(body[1]["status"], "unknown", "B1 never reported");

    let (_, en) = get_json(&app, "/api/buildings?lang=en").await;
    assert!(
        en[0]["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rooftop fire tank")
    );
}

#[tokio::test]
async fn building_detail_shows_each_point_and_the_requirements() {
    let (_dir, app) = app().await;
    report(&app, 2.3, 0.08).await;
    let (status, body) = get_json(&app, "/api/buildings/B2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["class"], "residential_high_rise_ii");
    assert_eq!(body["requirements"]["tank_volume_m3"], 12.0);
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["point"], "tank.level");
    assert_eq!(points[1]["value"], 2.3);
    assert_eq!(points[1]["quality"], "good");
}

#[tokio::test]
async fn unknown_building_is_a_json_404() {
    let (_dir, app) = app().await;
    let (status, body) = get_json(&app, "/api/buildings/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "building not found");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (_dir, app) = app().await;
    report(&app, 1.0, 0.08).await;
    let res = router(app.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("# TYPE riser_ingest_messages_stored_total counter"),
        "{text}"
    );
    assert!(
        text.contains("riser_buildings{status=\"failing\"} 1"),
        "{text}"
    );
    assert!(text.contains("riser_ingest_sequence_missing 0\n"), "{text}");
}

#[tokio::test]
async fn sequence_gaps_are_metrics_per_gateway_until_filled() {
    let (_dir, app) = app().await;
    let now = OffsetDateTime::now_utc();
    let telemetry = |seq| {
        Message::Telemetry(Telemetry::new(
            "gw-B2",
            seq,
            vec![reading_at("tank.level", now, 2.3)],
        ))
    };
    let scrape = || async {
        let res = router(app.clone())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    for seq in [1, 4] {
        app.store.ingest(&telemetry(seq), now).await.unwrap();
    }
    let text = scrape().await;
    assert!(text.contains("riser_ingest_sequence_missing 2\n"), "{text}");
    assert!(
        text.contains(
            "riser_ingest_gateway_sequence_missing{gateway=\"gw-B2\",stream=\"telemetry\"} 2\n"
        ),
        "{text}"
    );
    for seq in [2, 3] {
        app.store.ingest(&telemetry(seq), now).await.unwrap();
    }
    let text = scrape().await;
    assert!(text.contains("riser_ingest_sequence_missing 0\n"), "{text}");
    assert!(
        text.contains(
            "riser_ingest_gateway_sequence_missing{gateway=\"gw-B2\",stream=\"telemetry\"} 0\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn gateways_show_their_health_and_what_has_not_arrived() {
    let (_dir, app) = app().await;
    let now = OffsetDateTime::now_utc();
    let mut health = Health {
        uptime_secs: 86_400,
        ..Health::default()
    };
    health.outbox.readings = 5_000;
    health.clock.trusted = true;
    let status = |online, health| {
        Message::Status(riser_contract::Status {
            v: VERSION,
            gateway: "gw-B2".into(),
            online,
            ts: online.then_some(now),
            software: Some("0.2.0".into()),
            health,
        })
    };
    app.store
        .ingest(&status(true, Some(health)), now)
        .await
        .unwrap();
    for seq in [1, 2, 5] {
        let mut t = Telemetry::new("gw-B2", seq, vec![reading_at("tank.level", now, 2.3)]);
        t.epoch = 77;
        app.store.ingest(&Message::Telemetry(t), now).await.unwrap();
    }
    app.store.ingest(&status(false, None), now).await.unwrap();

    let (status, list) = get_json(&app, "/api/gateways").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gw-B1", "gw-B2"], "registry gateways too");
    assert_eq!(
        list[0]["online"],
        serde_json::Value::Null,
        "never heard from"
    );
    assert_eq!(list[0]["buildings"], serde_json::json!(["B1"]));

    let (status, gw) = get_json(&app, "/api/gateways/gw-B2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gw, list[1]);
    assert_eq!(gw["online"], false);
    assert_eq!(gw["software"], "0.2.0");
    assert_eq!(
        gw["health"]["uptime_secs"], 86_400,
        "kept after the last-will"
    );
    assert_eq!(gw["health"]["outbox"]["readings"], 5_000);
    assert_eq!(gw["health"]["clock"]["trusted"], true);
    assert_eq!(gw["missing"], 2);
    let seq = &gw["sequences"][0];
    assert_eq!(seq["stream"], "telemetry");
    assert_eq!(seq["epoch"], 77);
    assert_eq!(
        (&seq["highest"], &seq["received"], &seq["missing"]),
        (
            &serde_json::json!(5),
            &serde_json::json!(3),
            &serde_json::json!(2)
        )
    );

    let (status, body) = get_json(&app, "/api/gateways/gw-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "gateway not found");
}

#[tokio::test]
async fn a_point_judged_at_its_arrival_shows_the_gateways_own_time() {
    let (_dir, app) = app().await;
    let now = OffsetDateTime::now_utc();
    let board = time::macros::datetime!(1970-01-01 00:01 UTC);
    let m = Message::Events(riser_contract::Events {
        v: VERSION,
        gateway: "gw-B2".into(),
        epoch: 0,
        seq: 1,
        replay: false,
        events: vec![riser_contract::Event {
            kind: riser_contract::EventKind::StateChanged,
            point: "pumps.fire_fault".into(),
            ts: board,
            value: Some(1.0),
            quality: Quality::Good,
            clock: Some(ClockFlag::Unsynced),
        }],
    });
    app.store.ingest(&m, now).await.unwrap();
    let (_, body) = get_json(&app, "/api/buildings/B2").await;
    let point = &body["points"][0];
    assert_eq!(point["point"], "pumps.fire_fault");
    assert_eq!(point["clock"], "unsynced");
    assert_eq!(point["gateway_ts"], "1970-01-01T00:01:00Z");
    let ts = OffsetDateTime::parse(
        point["ts"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(crate::store::to_ms(ts), crate::store::to_ms(now));
}

#[tokio::test]
async fn a_building_page_names_its_parties_with_phones_and_mail_but_no_robot_address() {
    use crate::notify::channel::Target;
    use crate::notify::route::{Contacts, Party};
    const CSV: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m,management_unit,contractor,contractor_email,building_manager,address
B7,七号楼,梁平区,梁山街道,西平社区,residential,no,60,20,10,2.5,0.2,嘉禾物业,安泰维保,duty@antai.example,楼栋长007,梁山街道人民路7号
";
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path()).await;
    let party = |name: &str, targets: Vec<Target>| Party {
        name: name.into(),
        targets,
        lang: Default::default(),
    };
    let app = Arc::new(App {
        auth: crate::auth::AuthConfig {
            anonymous: Some(crate::auth::Role::Installer),
            ..Default::default()
        },
        contacts: Contacts {
            party: vec![
                party(
                    "安泰维保",
                    vec![
                        Target::Sms {
                            phone: "13800138000".into(),
                        },
                        Target::WeCom {
                            url: "https://qyapi.example/send?key=SECRET-KEY".into(),
                        },
                    ],
                ),
                party(
                    "楼栋长007",
                    vec![Target::Email {
                        to: "lou7@example.cn".into(),
                    }],
                ),
            ],
            fire_rescue: Vec::new(),
        },
        ..App::new(
            crate::Registry::new(crate::registry::parse_csv(CSV).unwrap()).unwrap(),
            store,
        )
    });
    let (status, detail) = get_json(&app, "/api/buildings/B7").await;
    assert_eq!(status, StatusCode::OK);
    let p = &detail["parties"];
    assert_eq!(p["management_unit"], "嘉禾物业");
    assert_eq!(p["contractor"], "安泰维保");
    assert_eq!(p["contractor_phone"], serde_json::json!(["13800138000"]));
    assert_eq!(
        p["contractor_email"],
        serde_json::json!(["duty@antai.example"])
    );
    assert_eq!(
        p["building_manager_email"],
        serde_json::json!(["lou7@example.cn"])
    );
    assert_eq!(detail["address"], "梁山街道人民路7号");
    assert!(!detail.to_string().contains("SECRET-KEY"), "{detail}");
    let (_, list) = get_json(&app, "/api/buildings").await;
    assert_eq!(list[0]["contractor"], "安泰维保");
    assert_eq!(list[0]["community"], "西平社区");
}
