//! One building travels the whole way for real: device-sim (Modbus TCP) →
//! gateway (outbox, MQTT) → Mosquitto → cloud-ingest (SQLite, rules, HTTP).

use std::net::SocketAddr;
use std::time::Duration;

use riser_contract::Stream;
use riser_e2e::{Mosquitto, eventually, get_json, init_tracing};
use riser_gateway::Gateway;
use riser_gateway::config::MqttConfig;
use riser_ingest::{Ingest, Registry};
use riser_sim::{BuildingSpec, Fault, Sim, SimOptions, site};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How long the broker stays down in the middle of the test.
const BROKER_OUTAGE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(60);

/// [`BuildingSpec::example`]: a 二类高层住宅 needing 12 m³ and 0.07 MPa,
/// holding 17.6 m³ and about 0.082 MPa when full.
fn spec() -> BuildingSpec {
    BuildingSpec::example("E2E-1")
}

async fn building(http: SocketAddr) -> Value {
    let (status, body) = get_json(http, "/api/buildings/E2E-1")
        .await
        .expect("API answers");
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_for_status(http: SocketAddr, wanted: &'static str) -> Value {
    eventually(&format!("building to be {wanted}"), WAIT, || async move {
        let b = building(http).await;
        (b["status"] == wanted).then_some(b)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_tank_fails_its_building_and_a_broker_outage_loses_no_reading() {
    init_tracing();
    let shutdown = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let mut mosquitto = Mosquitto::start().await.unwrap();

    let options = SimOptions {
        drain_rate_m_per_s: 1.0,
        refill_rate_m_per_s: 1.0,
        ..SimOptions::default()
    };
    let sim = Sim::start(vec![spec()], options, shutdown.clone())
        .await
        .unwrap();
    let modbus = sim.buildings[0].modbus_addr;

    let registry =
        Registry::new(vec![site::registry_building(&spec(), "梁平区", "梁山街道")]).unwrap();
    let mut ingest_config =
        riser_e2e::ingest_config(&dir.path().join("ingest"), mosquitto.port, "e2e");
    ingest_config.rules.evaluate_every_secs = 1;
    // Conditions count at once here; their durations have their own tests.
    ingest_config.rules.tuning = riser_ingest::rules::Tuning::immediate();
    let ingest = Ingest::start(ingest_config, registry, shutdown.clone())
        .await
        .unwrap();
    let http = ingest.http_addr;

    let mqtt = MqttConfig {
        port: mosquitto.port,
        reconnect_delay_ms: 200,
        reconnect_max_delay_ms: 1_000,
        keep_alive_secs: 5,
        ..MqttConfig::default()
    };
    let mut gateway_config =
        site::gateway_config(&spec(), modbus, mqtt, dir.path().join("gateway"), 200);
    // A heartbeat every second, so the outage below has readings to backfill.
    gateway_config.report.max_interval_secs = 1;
    gateway_config.mqtt.batch_delay_ms = 200;
    let gateway = Gateway::start(gateway_config, shutdown.clone())
        .await
        .unwrap();

    // A full tank and a standing column: ok.
    let ok = wait_for_status(http, "ok").await;
    let level = ok["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == "tank.level")
        .unwrap();
    assert_eq!(level["quality"], "good");
    assert!(
        (level["value"].as_f64().unwrap() - 2.4).abs() < 0.01,
        "{level}"
    );

    // A pump fault travels as an event, once, and shows on the building.
    let fault = |b: &Value| {
        b["points"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["point"] == "pumps.fire_fault"))
            .map(|p| p["value"].clone())
    };
    assert_eq!(
        fault(&ok),
        Some(Value::from(0.0)),
        "the initial state arrives as an event"
    );
    sim.inject("E2E-1", Fault::PumpFault).unwrap();
    eventually("the pump fault on the building", WAIT, || async move {
        (fault(&building(http).await) == Some(Value::from(1.0))).then_some(())
    })
    .await;
    sim.clear("E2E-1").unwrap();

    // Drain: failing, naming measured and required volume and the clause.
    sim.inject(
        "E2E-1",
        Fault::DrainTank {
            to_level_m: Some(1.0),
        },
    )
    .unwrap();
    // (The cleared pump fault may still be on its way: wait for the tank.)
    let failing = eventually("the tank to fail its building", WAIT, || async move {
        let b = building(http).await;
        let tank = b["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["code"] == "tank_volume_low"));
        (b["status"] == "failing" && tank).then_some(b)
    })
    .await;
    let reason = failing["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "tank_volume_low")
        .unwrap_or_else(|| panic!("no tank reason in {failing}"));
    let volume = reason["value"].as_f64().unwrap();
    assert!(volume < 12.0, "{reason}");
    assert_eq!(reason["required"], 12.0);
    assert_eq!(reason["clause"], "GB 50974-2014 5.2.1");
    let message = reason["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{volume} m³"))
            && message.contains("12 m³")
            && message.contains("5.2.1"),
        "{message}"
    );

    // The broker goes away; the gateway keeps reading into its outbox.
    mosquitto.stop().unwrap();
    let stopped_at = time::OffsetDateTime::now_utc();
    tokio::time::sleep(BROKER_OUTAGE).await;
    let buffered = gateway.outbox.depth().await.unwrap();
    assert!(
        buffered > 10,
        "only {buffered} writes buffered during the outage"
    );
    let resumed_at = time::OffsetDateTime::now_utc();
    mosquitto.resume().await.unwrap();

    // Refill: ok again.
    sim.clear("E2E-1").unwrap();
    wait_for_status(http, "ok").await;

    // Every telemetry and event message arrived, contiguous from 1.
    for stream in [Stream::Telemetry, Stream::Events] {
        // The gateway keeps polling: wait until the cloud holds at least what
        // the gateway had numbered by now, then check nothing is missing.
        let last = gateway.outbox.last_seq(stream).await.unwrap();
        let store = ingest.app.store.clone();
        let received = eventually(&format!("{stream} up to {last} in the cloud"), WAIT, || {
            let store = store.clone();
            async move {
                let seqs = store.received_seqs("gw-E2E-1", stream).await.ok()?;
                // Live telemetry overtakes the backlog, so wait for the
                // count, not the highest number.
                (seqs.len() as u64 >= last).then_some(seqs)
            }
        })
        .await;
        let contiguous: Vec<u64> = (1..=*received.last().unwrap()).collect();
        assert_eq!(
            received, contiguous,
            "{stream} sequence numbers in the cloud"
        );
    }
    // The readings taken while the broker was down arrived, with their times.
    let during_outage = ingest
        .app
        .store
        .history("gw-E2E-1", "tank.level")
        .await
        .unwrap()
        .into_iter()
        .filter(|(ts, _)| (stopped_at..resumed_at).contains(ts))
        .count();
    assert!(
        // A heartbeat at the first 200 ms poll a second or more after the
        // last: 25 to 30 in the outage.
        during_outage as u64 >= BROKER_OUTAGE.as_secs() * 3 / 4,
        "{during_outage} tank readings from the outage"
    );

    shutdown.cancel();
    gateway.join().await;
    ingest.join().await;
    sim.join().await;
}
