//! The dashboard's reads at district scale: `buildings` buildings (5
//! districts × 10 towns × communities of 10), every one reporting, about
//! one in ten failing with an open item, judged; then the pages' requests
//! over HTTP on loopback, one after another, signed in: the overview and
//! building list (`GET /api/buildings`) as an admin (every building) and
//! as fire-rescue staff of one district, a building page, the hazard list
//! and the statistics. Time is request sent → whole response read (an upper
//! bound of the server's time), p50/p99/max over `requests` each.

use std::time::Instant;

use anyhow::{Context, bail};
use riser_contract::{Message, Reading, Telemetry};
use riser_ingest::auth::{NewUser, Role, add_user};
use riser_ingest::registry::Building;
use riser_ingest::{Ingest, Registry};
use riser_sim::{BuildingSpec, site};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::store_forward::ms;

const DISTRICTS: usize = 5;
const TOWNS: usize = 10;
const PER_COMMUNITY: usize = 10;

fn building(k: usize) -> Building {
    let district = k % DISTRICTS;
    let town = (k / DISTRICTS) % TOWNS;
    let community = k / (DISTRICTS * TOWNS * PER_COMMUNITY);
    let id = format!("D{district}-{k:05}");
    let mut b = site::registry_building(
        &BuildingSpec::example(&id),
        &format!("第{district}区"),
        &format!("第{district}区{town}街道"),
    );
    b.community = format!("{town}街道{community}社区");
    b.name = format!("{}号楼", k);
    b.address = Some(format!("第{district}区{town}街道{k}号"));
    b.parties.contractor = Some(format!("维保{}", k % 40));
    b
}

pub async fn dashboard(
    buildings: usize,
    requests: usize,
    database: Option<String>,
) -> anyhow::Result<()> {
    if buildings < DISTRICTS || requests == 0 {
        bail!("--buildings at least {DISTRICTS}, --requests at least 1");
    }
    let registry = Registry::new((0..buildings).map(building).collect())?;
    let dir = tempfile::tempdir()?;
    let mut config: riser_ingest::Config = toml::from_str(&format!(
        "data_dir = {:?}\nregistry = \"unused\"\n[http]\nlisten = \"127.0.0.1:0\"\n[mqtt]\nembedded_listen = \"127.0.0.1:{}\"\n[rules]\nevaluate_every_secs = 3600\n",
        dir.path(),
        riser_e2e::free_port()
    ))?;
    if let Some(url) = &database {
        crate::ingest::reset_postgres(url).await?;
        config.database_url = Some(url.clone());
    }
    config.rules.tuning = riser_ingest::rules::Tuning::immediate();
    let shutdown = CancellationToken::new();
    let ingest = Ingest::start(config, registry, shutdown.clone()).await?;
    let app = ingest.app.clone();

    // Seed: every building reports; one in ten has a low tank.
    let seeding = Instant::now();
    let now = OffsetDateTime::now_utc();
    for (k, b) in app.registry.buildings().iter().enumerate() {
        let level = if k % 10 == 3 { 0.5 } else { 2.3 };
        let m = Message::Telemetry(Telemetry::new(
            &b.gateway,
            1,
            vec![
                Reading::good("tank.level", now, level),
                Reading::good("riser.pressure", now, 0.35),
            ],
        ));
        app.store.ingest(&m, now).await?;
    }
    riser_ingest::judge(&app, None, now).await?;
    let (_, open) =
        riser_ingest::hazards::list(&app.store, &riser_ingest::hazards::Filter::default(), now)
            .await?;
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "dashboard reads, one cloud-ingest node ({backend}), {buildings} buildings in {DISTRICTS} districts, seeded and judged in {:.1} s ({} items open); {requests} requests each, one at a time, HTTP/1.1 keep-alive on loopback",
        seeding.elapsed().as_secs_f64(),
        open,
    );

    for (username, role, scope) in [
        ("admin", Role::Admin, None),
        ("fire", Role::FireRescue, Some("第0区".to_owned())),
    ] {
        add_user(
            &app.store,
            &NewUser {
                username: username.into(),
                display_name: None,
                password: format!("{username}-bench-password"),
                role,
                scope,
            },
            now,
        )
        .await?;
    }
    let base = format!("http://{}", ingest.http_addr);
    let client = |username: &str| {
        let base = base.clone();
        let username = username.to_owned();
        async move {
            let client = reqwest::Client::builder().cookie_store(true).build()?;
            let login = client
                .post(format!("{base}/api/login"))
                .json(&serde_json::json!({ "username": username, "password": format!("{username}-bench-password") }))
                .send()
                .await?;
            if !login.status().is_success() {
                bail!("sign-in as {username}: {}", login.status());
            }
            anyhow::Ok(client)
        }
    };
    let admin = client("admin").await?;
    let fire = client("fire").await?;
    let some = &app.registry.buildings()[3].id;
    let cases: Vec<(&str, &reqwest::Client, String)> = vec![
        (
            "overview/list, admin (all)",
            &admin,
            "/api/buildings".into(),
        ),
        (
            "overview/list, fire (1 district)",
            &fire,
            "/api/buildings".into(),
        ),
        ("building page", &admin, format!("/api/buildings/{some}")),
        (
            "hazards, first 100",
            &admin,
            "/api/hazards?limit=100".into(),
        ),
        (
            "statistics by community",
            &admin,
            "/api/statistics?level=community".into(),
        ),
    ];
    println!(
        "{:<36} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "request", "bytes", "p50 ms", "p99 ms", "max ms", "items"
    );
    for (what, client, path) in cases {
        let url = format!("{base}{path}");
        let mut times = Vec::with_capacity(requests);
        let mut bytes = 0;
        let mut items = 0;
        // One warm-up request (connection, statement caches).
        client.get(&url).send().await?.bytes().await?;
        for _ in 0..requests {
            let t = Instant::now();
            let response = client.get(&url).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            times.push(t.elapsed());
            if !status.is_success() {
                bail!("{url}: {status}");
            }
            bytes = body.len();
            let json: serde_json::Value = serde_json::from_slice(&body).context("JSON")?;
            items = json
                .as_array()
                .or_else(|| json["items"].as_array())
                .or_else(|| json["rows"].as_array())
                .map_or(1, Vec::len);
        }
        let max = times.iter().max().copied().unwrap_or_default();
        let mut q = |q| riser_ingest::metrics::quantile(&mut times, q).map_or(f64::NAN, ms);
        let (p50, p99) = (q(0.5), q(0.99));
        println!(
            "{what:<36} {bytes:>10} {p50:>9.1} {p99:>9.1} {:>9.1} {items:>8}",
            ms(max)
        );
    }
    println!("target: overview and building list p99 ≤ 200 ms");
    shutdown.cancel();
    ingest.join().await;
    Ok(())
}
