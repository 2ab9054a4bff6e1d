//! The dashboard in a real browser: a seeded cloud-ingest (the sample
//! district, two buildings named with markup, a user of each role, a
//! failing building with an open item) and `tests/browser/run.mjs`, which
//! drives Debian's Chromium through it with playwright-core. Needs
//! `chromium` and `npm ci` in `tests/browser` (`scripts/test` does both).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use riser_contract::{Message, Reading, Telemetry};
use riser_ingest::auth::{NewUser, Role, add_user};
use riser_ingest::{Ingest, Registry};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// The sample district and two buildings whose names are markup.
fn registry() -> Registry {
    let mut csv = std::fs::read_to_string(repo().join("data/buildings-liangping.csv"))
        .expect("the sample district");
    let header = csv.lines().next().unwrap().to_owned();
    let template = csv.lines().nth(1).unwrap().to_owned();
    for (id, name) in [
        ("XSS-1", "<script>alert(1)</script>"),
        ("XSS-2", "<img src=x onerror=alert(1)>"),
    ] {
        let mut fields: Vec<String> = template.split(',').map(str::to_owned).collect();
        let column = |n: &str| header.split(',').position(|h| h == n).unwrap();
        fields[column("id")] = id.into();
        fields[column("name")] = name.into();
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    Registry::new(riser_ingest::registry::parse_csv(&csv).expect("a valid registry"))
        .expect("unique ids")
}

fn telemetry(gateway: &str, seq: u64, level: f64, at: OffsetDateTime) -> Message {
    Message::Telemetry(Telemetry::new(
        gateway,
        seq,
        vec![
            Reading::good("tank.level", at, level),
            Reading::good("riser.pressure", at, 0.35),
        ],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_for_every_role_in_a_real_browser() {
    riser_e2e::init_tracing();
    let browser_dir = repo().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/test, or `npm ci` in tests/browser"
    );
    let chromium = std::env::var("RISER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no {chromium}: run scripts/test, or `apt-get install chromium`"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut config: riser_ingest::Config = toml::from_str(&format!(
        "data_dir = {:?}\nregistry = \"unused\"\n[http]\nlisten = \"127.0.0.1:0\"\n[mqtt]\nembedded_listen = \"127.0.0.1:{}\"\n",
        dir.path(),
        riser_e2e::free_port()
    ))
    .unwrap();
    config.rules.tuning = riser_ingest::rules::Tuning::immediate();
    let registry = registry();
    let first = registry.buildings()[0].clone();
    let contractor = first.parties.contractor.clone().expect("a contractor");
    let shutdown = CancellationToken::new();
    let ingest = Ingest::start(config, registry, shutdown.clone())
        .await
        .unwrap();
    let app = ingest.app.clone();

    let now = OffsetDateTime::now_utc();
    let users = [
        ("admin", Role::Admin, None),
        ("fire", Role::FireRescue, Some("梁平区/屏锦镇".to_owned())),
        ("contractor", Role::Contractor, Some(contractor)),
        ("installer", Role::Installer, None),
    ];
    let mut listed = Vec::new();
    for (username, role, scope) in users {
        let password = format!("{username}-browser-test");
        add_user(
            &app.store,
            &NewUser {
                username: username.into(),
                display_name: Some(format!("{username} 测试")),
                password: password.clone(),
                role,
                scope,
            },
            now,
        )
        .await
        .unwrap();
        listed
            .push(serde_json::json!({ "username": username, "password": password, "role": role }));
    }

    // The first building's tank is low (urgent, its contractor's); every
    // other building reads well, an hour of history for the charts.
    for building in app.registry.buildings() {
        let level = if building.id == first.id { 0.5 } else { 2.3 };
        for (seq, minutes) in [(1, 60), (2, 30), (3, 0)] {
            let at = now - time::Duration::minutes(minutes);
            app.store
                .ingest(&telemetry(&building.gateway, seq, level, at), at)
                .await
                .unwrap();
        }
    }
    riser_ingest::judge(&app, None, now).await.unwrap();

    let status = tokio::process::Command::new("node")
        .arg(browser_dir.join("run.mjs"))
        .env("RISER_URL", format!("http://{}", ingest.http_addr))
        .env("RISER_USERS", serde_json::Value::Array(listed).to_string())
        .env("RISER_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("node runs");
    shutdown.cancel();
    ingest.join().await;
    assert!(status.success(), "the browser tests failed: {status}");
}
