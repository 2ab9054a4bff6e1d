//! Alerts end to end: a low tank published over MQTT → stored and judged
//! by cloud-ingest → hazard opened → planned → the responsible parties'
//! webhooks (a local HTTP server of the bench's own) receive the signed
//! message. Two phases on one node (SQLite, or the given PostgreSQL
//! database), each with parties of its own:
//!
//! 1. **Latency**: `latency` buildings, one after another, each with its
//!    own contractor and building manager: published → the contractor's
//!    webhook received, p50/p99/max.
//! 2. **Outage**: `outage` buildings fail at once, `contractors`
//!    contractors sharing them, each building with its own building
//!    manager: messages each recipient got after the rate limit
//!    (`[notify.rate_limit]`, defaults), items in the digests, and the
//!    time until the last individual message and the last digest arrived
//!    (the digests wait `digest_after_secs` by design).
//!
//! Published → received bounds "hazard opened → webhook received" from
//! above: it adds the MQTT hop, the store and the judging before the item
//! is opened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use riser_contract::{Reading, Stream, Telemetry};
use riser_ingest::notify::NotifyConfig;
use riser_ingest::{Ingest, Registry};
use riser_sim::{BuildingSpec, site};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::store_forward::ms;

/// A low and a full tank of [`BuildingSpec::example`].
const LOW: f64 = 1.0;

/// One request the bench's webhook got.
#[derive(Debug, Clone)]
struct Got {
    /// The recipient: the path after `/hook/`.
    to: String,
    at: Instant,
    delivery: String,
    /// Items in it: 1, or a digest's count.
    items: usize,
}

type Inbox = Arc<Mutex<Vec<Got>>>;

async fn webhook() -> anyhow::Result<(String, Inbox)> {
    use axum::extract::{Path, State};
    async fn hook(
        State(inbox): State<Inbox>,
        Path(to): Path<String>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let at = Instant::now();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let items = json["items"].as_array().map_or(1, Vec::len);
        let delivery = headers
            .get("x-riser-delivery")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        inbox.lock().unwrap().push(Got {
            to,
            at,
            delivery,
            items,
        });
        axum::http::StatusCode::OK
    }
    let inbox: Inbox = Arc::default();
    let router = axum::Router::new()
        .route("/hook/{to}", axum::routing::post(hook))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((base, inbox))
}

fn building(id: &str, contractor: &str, manager: &str) -> riser_ingest::registry::Building {
    let mut b = site::registry_building(&BuildingSpec::example(id), "梁平区", "梁山街道");
    b.parties.contractor = Some(contractor.into());
    b.parties.building_manager = Some(manager.into());
    b
}

fn low_tank(id: &str) -> (String, Vec<u8>) {
    let gateway = site::gateway_id(&BuildingSpec::example(id));
    let ts = OffsetDateTime::now_utc();
    let message = Telemetry::new(
        &gateway,
        1,
        vec![
            Reading::good("tank.level", ts, LOW),
            Reading::good("riser.pressure", ts, 0.1),
        ],
    );
    (
        riser_contract::topic(&gateway, Stream::Telemetry),
        riser_contract::encode(&message),
    )
}

pub async fn alerts(
    latency: usize,
    outage: usize,
    contractors: usize,
    database: Option<String>,
) -> anyhow::Result<()> {
    if latency == 0 || outage == 0 || contractors == 0 {
        bail!("--latency, --outage and --contractors must be at least 1");
    }
    let (base, inbox) = webhook().await?;
    let mut buildings = Vec::new();
    let mut parties = Vec::new();
    for k in 0..latency {
        buildings.push(building(
            &format!("LAT-{k:04}"),
            &format!("c-lat-{k}"),
            &format!("m-lat-{k}"),
        ));
        parties.extend([format!("c-lat-{k}"), format!("m-lat-{k}")]);
    }
    for k in 0..outage {
        buildings.push(building(
            &format!("OUT-{k:04}"),
            &format!("c-out-{}", k % contractors),
            &format!("m-out-{k}"),
        ));
        parties.push(format!("m-out-{k}"));
    }
    parties.extend((0..contractors).map(|c| format!("c-out-{c}")));
    let registry = Registry::new(buildings)?;
    let notify_toml: String = parties
        .iter()
        .map(|p| {
            format!(
                "[[party]]\nname = \"{p}\"\ntargets = [{{ kind = \"webhook\", url = \"{base}/{p}\", secret = \"bench-secret\" }}]\n"
            )
        })
        .collect();
    let notify: NotifyConfig = toml::from_str(&notify_toml).context("the bench's [notify]")?;
    let limit = notify.rate_limit;

    let broker = riser_e2e::Mosquitto::start_in_memory().await?;
    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let mut config = riser_e2e::ingest_config(dir.path(), broker.port, "bench-alerts");
    if let Some(url) = &database {
        crate::ingest::reset_postgres(url).await?;
        config.database_url = Some(url.clone());
    }
    config.rules.tuning = riser_ingest::rules::Tuning::immediate();
    config.rules.evaluate_every_secs = 3600;
    config.notify = Some(notify);
    let ingest = Ingest::start(config, registry, shutdown.clone()).await?;
    let waited = Instant::now();
    while !ingest.app.metrics.mqtt_connected() {
        if waited.elapsed() > Duration::from_secs(30) {
            bail!("cloud-ingest did not subscribe within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let publisher = riser_e2e::Publisher::connect(broker.port, "bench-alerts-pub");
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "alerts, one cloud-ingest node ({backend}), its own Mosquitto, webhooks on a local HTTP server; rate limit {} messages per recipient per {} min, digests gathered {} s",
        limit.messages, limit.window_minutes, limit.digest_after_secs
    );

    // 1. Latency, one item at a time.
    let mut latencies = Vec::with_capacity(latency);
    for k in 0..latency {
        let to = format!("c-lat-{k}");
        let (topic, payload) = low_tank(&format!("LAT-{k:04}"));
        let t = Instant::now();
        publisher.publish(topic, payload).await?;
        let arrived = loop {
            if let Some(got) = inbox.lock().unwrap().iter().find(|g| g.to == to) {
                break got.at;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("no message for {to} within 30 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.saturating_duration_since(t));
    }
    let max = latencies.iter().max().map_or(f64::NAN, |d| ms(*d));
    let mut q = |q| riser_ingest::metrics::quantile(&mut latencies, q).map_or(f64::NAN, ms);
    let (p50, p99) = (q(0.5), q(0.99));
    println!(
        "latency, low tank published → contractor's webhook received, {latency} items one at a time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 ≤ 200 ms)",
        p50, p99, max
    );

    // 2. An outage: every OUT building at once.
    inbox.lock().unwrap().clear();
    let load: Vec<_> = (0..outage)
        .map(|k| low_tank(&format!("OUT-{k:04}")))
        .collect();
    let t0 = Instant::now();
    for (topic, payload) in load {
        publisher.publish(topic, payload).await?;
    }
    let expected_items = 2 * outage;
    loop {
        let items: usize = inbox.lock().unwrap().iter().map(|g| g.items).sum();
        if items >= expected_items {
            break;
        }
        if t0.elapsed() > Duration::from_secs(limit.digest_after_secs + 300) {
            bail!(
                "{items} of {expected_items} items told after {:?}",
                t0.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = inbox.lock().unwrap().clone();
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for g in &got {
        let e = per.entry(&g.to).or_default();
        if g.delivery.starts_with("riser-digest-") {
            e.1 += 1;
            e.2 += g.items;
        } else {
            e.0 += 1;
        }
    }
    let summary = |prefix: &str| {
        let rows: Vec<_> = per.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        let messages: Vec<usize> = rows.iter().map(|(_, v)| v.0 + v.1).collect();
        (
            rows.len(),
            messages.iter().min().copied().unwrap_or(0),
            messages.iter().max().copied().unwrap_or(0),
            rows.iter().map(|(_, v)| v.1).sum::<usize>(),
            rows.iter().map(|(_, v)| v.2).sum::<usize>(),
        )
    };
    let last = |digest: bool| {
        got.iter()
            .filter(|g| g.delivery.starts_with("riser-digest-") == digest)
            .map(|g| g.at.saturating_duration_since(t0))
            .max()
            .map_or(f64::NAN, |d| d.as_secs_f64())
    };
    let (c_n, c_min, c_max, c_digests, c_items) = summary("c-out-");
    let (m_n, m_min, m_max, _, _) = summary("m-out-");
    println!(
        "outage, {outage} buildings failing at once, {contractors} contractors sharing them, a building manager each: {} items to tell, {} messages sent",
        expected_items,
        got.len()
    );
    println!(
        "  contractors ({c_n}): {c_min}–{c_max} messages each, of them {c_digests} digests in all carrying {c_items} items"
    );
    println!("  building managers ({m_n}): {m_min}–{m_max} messages each");
    println!(
        "  drained (from the first publish): last individual message at {:.2} s, last digest at {:.2} s (digests wait {} s for more items by design)",
        last(false),
        last(true),
        limit.digest_after_secs
    );
    let duplicates = got.len()
        - got
            .iter()
            .map(|g| g.delivery.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
    if duplicates > 0 {
        println!("  {duplicates} deliveries repeated a delivery id");
    }
    drop(publisher);
    shutdown.cancel();
    ingest.join().await;
    Ok(())
}
