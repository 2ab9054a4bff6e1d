use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use riser_contract::{Message, Reading, Telemetry, VERSION};
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

async fn report(app: &Arc<App>, level: f64, pressure: f64) {
    let now = OffsetDateTime::now_utc();
    let reading = |point: &str, value: f64| Reading {
        point: point.into(),
        ts: now,
        value: Some(value),
        unit: None,
        quality: Quality::Good,
        exception: None,
    };
    let m = Message::Telemetry(Telemetry {
        v: VERSION,
        gateway: "gw-B2".into(),
        seq: 1,
        readings: vec![
            reading("tank.level", level),
            reading("riser.pressure", pressure),
        ],
    });
    app.store.ingest(&m, now).await.unwrap();
    crate::judge(app, Some("gw-B2"), now).await.unwrap();
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
}
