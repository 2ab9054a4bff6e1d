//! Crash tests of the alert outbox, process level (issue 6: "a crash
//! between commit and send neither loses nor duplicates a message"). The
//! real `riser-ingest` binary runs on SQLite in a temp dir, consuming from a
//! Mosquitto of the test's own; its alerts go to a webhook receiver in the
//! test (axum on a free port), which checks every signature. The test
//! SIGKILLs the node at chosen and at random moments and starts it again
//! on the same data dir.
//!
//! The contract: every transition is planned once, into one row per
//! recipient; every row is sent at least once; a message arrives twice
//! only as a copy with the same `X-Riser-Delivery` id (a node killed
//! between its send and its mark sends again once the lease runs out).
//!
//! Needs `target/debug/riser-ingest` built from the current sources
//! (`cargo nextest run --workspace` builds it, or `cargo build --bin
//! riser-ingest`); see [`riser_e2e::workspace_binary`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use riser_contract::{Reading, Stream, Telemetry};
use riser_e2e::{Mosquitto, Publisher, eventually, init_tracing};
use riser_ingest::notify::channel::verify_webhook;
use riser_ingest::registry::Building;
use riser_sim::{BuildingSpec, site};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, oneshot};

const WAIT: Duration = Duration::from_secs(60);
/// How often the random test looks at the database and the receiver.
const POLL: Duration = Duration::from_millis(20);
const SECRET: &str = "crash-test-secret-消防";
/// How long a claimed message is left to the node that claimed it
/// (`notify.lease_secs`; 60 s in production). Longer than the HTTP
/// timeout, so a live node's send never overlaps its own lease.
const LEASE_SECS: u64 = 3;
const HTTP_TIMEOUT_MS: u64 = 2000;

/// A full tank of [`BuildingSpec::example`] and a low one (it fails 5.2.1).
const FULL: f64 = 2.3;
const LOW: f64 = 1.0;

// ---------------------------------------------------------------------------
// The webhook receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    delivery: String,
    /// The signature verified with [`SECRET`] and the timestamp is fresh.
    signed: bool,
    hazard_id: i64,
    action: String,
}

#[derive(Debug, Default)]
enum Trap {
    #[default]
    Off,
    /// The next request is held unanswered until [`Hooks::release`].
    Armed,
    /// Holding this request; dropping `_release` lets it be answered.
    Tripped {
        received: Received,
        _release: oneshot::Sender<()>,
    },
}

#[derive(Default)]
struct HooksState {
    got: Vec<Received>,
    trap: Trap,
}

/// The webhook receiver: records every request and answers 200, except
/// the one a trap holds.
#[derive(Clone, Default)]
struct Hooks {
    state: Arc<Mutex<HooksState>>,
    tripped: Arc<Notify>,
}

impl Hooks {
    async fn start() -> (SocketAddr, Self) {
        let hooks = Self::default();
        let app = Router::new().fallback(receive).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, hooks)
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    fn count(&self) -> usize {
        self.state.lock().unwrap().got.len()
    }

    /// Holds the answer to the next request until [`Hooks::release`].
    fn arm(&self) {
        self.state.lock().unwrap().trap = Trap::Armed;
    }

    fn tripped(&self) -> Option<Received> {
        match &self.state.lock().unwrap().trap {
            Trap::Tripped { received, .. } => Some(received.clone()),
            _ => None,
        }
    }

    /// The request the trap holds, once one arrives.
    async fn wait_tripped(&self) -> Received {
        tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.tripped.notified();
                if let Some(r) = self.tripped() {
                    return r;
                }
                notified.await;
            }
        })
        .await
        .expect("a webhook request within the time limit")
    }

    /// Lets the held request be answered (to nobody, once the node is
    /// dead) and disarms the trap.
    fn release(&self) {
        self.state.lock().unwrap().trap = Trap::Off;
    }
}

async fn receive(
    State(hooks): State<Hooks>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let received = Received {
        path: uri.path().to_owned(),
        delivery: header("x-riser-delivery"),
        signed: verify_webhook(
            SECRET,
            &header("x-riser-timestamp"),
            &body,
            &header("x-riser-signature"),
        ),
        hazard_id: json["hazard_id"].as_i64().unwrap_or(-1),
        action: json["action"].as_str().unwrap_or("").to_owned(),
    };
    let held = {
        let mut state = hooks.state.lock().unwrap();
        state.got.push(received.clone());
        if matches!(state.trap, Trap::Armed) {
            let (release, held) = oneshot::channel();
            state.trap = Trap::Tripped {
                received,
                _release: release,
            };
            Some(held)
        } else {
            None
        }
    };
    if let Some(held) = held {
        hooks.tripped.notify_one();
        let _ = held.await;
    }
    StatusCode::OK
}

// ---------------------------------------------------------------------------
// The node and its files

/// One building and the webhook paths its contractor's targets point at.
struct Site {
    spec: BuildingSpec,
    contractor: String,
    paths: Vec<String>,
}

impl Site {
    /// Building `n` (`CR-{n}`), its own contractor with `targets` webhooks.
    fn new(n: usize, targets: usize) -> Self {
        Self {
            spec: BuildingSpec::example(&format!("CR-{n:02}")),
            contractor: format!("维保{n:02}公司"),
            paths: (0..targets).map(|t| format!("/hook/{n}/{t}")).collect(),
        }
    }

    fn gateway(&self) -> String {
        site::gateway_id(&self.spec)
    }
}

/// Everything a node is started from: its binary, config, registry, data
/// dir and log, in one temp dir; and the broker.
struct Setup {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    db: PathBuf,
    broker: Mosquitto,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(sites: &[Site], hooks: SocketAddr) -> Self {
        let binary = riser_e2e::workspace_binary("riser-ingest", "cloud-ingest").unwrap();
        let broker = Mosquitto::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");

        #[derive(serde::Serialize)]
        struct RegistryFile {
            building: Vec<Building>,
        }
        let building = sites
            .iter()
            .map(|s| {
                let mut b = site::registry_building(&s.spec, "梁平区", "梁山街道");
                b.parties.contractor = Some(s.contractor.clone());
                b
            })
            .collect();
        let registry = dir.path().join("registry.toml");
        std::fs::write(
            &registry,
            toml::to_string(&RegistryFile { building }).unwrap(),
        )
        .unwrap();

        let parties: String = sites
            .iter()
            .map(|s| {
                let targets: Vec<String> = s
                    .paths
                    .iter()
                    .map(|p| {
                        format!(
                            r#"{{ kind = "webhook", url = "http://{hooks}{p}", secret = "{SECRET}" }}"#
                        )
                    })
                    .collect();
                format!(
                    "[[notify.party]]\nname = \"{}\"\ntargets = [{}]\n",
                    s.contractor,
                    targets.join(", ")
                )
            })
            .collect();
        // Every condition counts and clears at once; urgent items (a low
        // tank) go to the contractor only, items about missing data to
        // nobody; a cleared condition is told at once; no periodic judge
        // beyond the one at start-up.
        let config = format!(
            r#"
data_dir = "{data}"
registry = "{registry}"

[http]
listen = "127.0.0.1:0"

[mqtt]
broker = "127.0.0.1:{broker}"
client_id = "riser-ingest-crash"

[rules]
evaluate_every_secs = 3600

[rules.tuning]
tank_low = {{ for_secs = 0, clear_secs = 0 }}

[notify]
poll_ms = 20
reopen_quiet_minutes = 0
lease_secs = {LEASE_SECS}

[notify.routing]
opened = {{ urgent = ["contractor"], general = ["contractor"], monitoring = [] }}

[notify.channels]
http_timeout_ms = {HTTP_TIMEOUT_MS}

{parties}"#,
            data = data.display(),
            registry = registry.display(),
            broker = broker.port,
        );
        let config_path = dir.path().join("ingest.toml");
        std::fs::write(&config_path, config).unwrap();
        Self {
            binary,
            config: config_path,
            log: dir.path().join("ingest.log"),
            db: data.join("ingest.db"),
            broker,
            _dir: dir,
        }
    }

    /// The test's own connection to the node's database (WAL: reading
    /// never blocks the node).
    async fn database(&self) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(&self.db)
            .create_if_missing(false);
        sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- riser-ingest log (last lines) ---\n{}", self.log_tail());
        }
    }
}

/// A running `riser-ingest`; SIGKILLed when dropped, so a failing test
/// leaves no process behind.
struct Node {
    child: tokio::process::Child,
    api: SocketAddr,
}

impl Node {
    /// Starts the binary and waits until it serves its API: it prints the
    /// address once `Ingest::start` has returned (database migrated,
    /// consumers and notifier running).
    async fn start(setup: &Setup) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&setup.log)
            .unwrap();
        let mut child = tokio::process::Command::new(&setup.binary)
            .arg("--config")
            .arg(&setup.config)
            .env("RUST_LOG", "warn,riser_ingest=info")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line()).await;
        let Ok(Ok(Some(line))) = first else {
            let _ = child.start_kill();
            let status = child.wait().await;
            panic!(
                "riser-ingest did not start ({status:?}); its log:\n{}",
                setup.log_tail()
            );
        };
        // Keep reading, so a later line never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let api = line
            .trim()
            .strip_prefix("Riser dashboard: http://")
            .and_then(|a| a.strip_suffix('/'))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line `{line}`"));
        Self { child, api }
    }

    /// Waits until both consumers are subscribed: from then on the broker
    /// keeps what arrives for the node's sessions, even while it is down.
    async fn wait_subscribed(&self) {
        let api = self.api;
        eventually("the node to subscribe", WAIT, || async move {
            let (_, metrics) = riser_e2e::get_text(api, "/metrics").await.ok()?;
            metrics
                .lines()
                .any(|l| l == "riser_ingest_mqtt_connected 1")
                .then_some(())
        })
        .await;
    }

    /// SIGKILL: no shutdown, no flush, nothing after the instruction it is at.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Publishes one telemetry message of `site`'s gateway: its tank at `level`.
async fn publish_level(publisher: &Publisher, site: &Site, seq: u64, level: f64) {
    let gw = site.gateway();
    let now = OffsetDateTime::now_utc();
    let telemetry = Telemetry::new(
        &gw,
        seq,
        vec![
            Reading::good("tank.level", now, level),
            Reading::good("riser.pressure", now, 0.08),
        ],
    );
    publisher
        .publish(
            riser_contract::topic(&gw, Stream::Telemetry),
            riser_contract::encode(&telemetry),
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// What the database holds

#[derive(Debug, Clone, sqlx::FromRow)]
struct Transition {
    id: i64,
    building: String,
    code: String,
    action: String,
    planned_ms: Option<i64>,
}

async fn transitions(db: &SqlitePool) -> Vec<Transition> {
    sqlx::query_as(
        "SELECT t.id, h.building_id AS building, h.code, t.action, t.planned_ms
         FROM hazard_transitions t JOIN hazards h ON h.id = t.hazard_id ORDER BY t.id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    transition_id: i64,
    hazard_id: i64,
    action: String,
    recipient: String,
    /// The address as JSON (`channel::Target`).
    target: String,
    state: String,
    attempts: i64,
    next_ms: i64,
}

impl Row {
    fn delivery(&self) -> String {
        format!("riser-{}", self.id)
    }

    /// The path of the webhook URL it is addressed to.
    fn path(&self) -> String {
        let target: serde_json::Value = serde_json::from_str(&self.target).unwrap();
        let url = target["url"].as_str().unwrap_or_default();
        let after_scheme = url.trim_start_matches("http://");
        after_scheme[after_scheme.find('/').unwrap_or(after_scheme.len())..].to_owned()
    }
}

async fn notifications(db: &SqlitePool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, transition_id, hazard_id, action, recipient, target, state, attempts, next_ms
         FROM notifications ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

// ---------------------------------------------------------------------------
// The deterministic crash

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_sent_by_a_node_killed_before_marking_it_is_sent_again_once_with_the_same_delivery_id()
 {
    init_tracing();
    let (hooks_addr, hooks) = Hooks::start().await;
    let sites = [Site::new(1, 1)];
    let setup = Setup::new(&sites, hooks_addr).await;
    let node = Node::start(&setup).await;
    node.wait_subscribed().await;
    let db = setup.database().await;
    let publisher = Publisher::connect(setup.broker.port, "crash-test-gateway");

    // The tank runs low: an item opens and its alert goes out; the
    // receiver holds its answer and the node dies waiting for it.
    hooks.arm();
    publish_level(&publisher, &sites[0], 1, LOW).await;
    let first = hooks.wait_tripped().await;
    node.kill().await;
    hooks.release();

    let rows = notifications(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = rows[0].clone();
    assert_eq!(first.delivery, row.delivery());
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("pending", 1),
        "claimed once and never marked: {row:?}"
    );
    assert!(
        row.next_ms > now_ms(),
        "still leased to the dead node: {row:?}"
    );

    // Started again on the same data dir: once the lease has run out, the
    // row is claimed and sent again.
    let node = Node::start(&setup).await;
    let sent = eventually("the alert to be marked sent", WAIT, || {
        let db = &db;
        async move {
            let rows = notifications(db).await;
            (rows.len() == 1 && rows[0].state == "sent").then(|| rows[0].clone())
        }
    })
    .await;
    node.kill().await;

    assert_eq!(sent.attempts, 2, "{sent:?}");
    let got = hooks.got();
    assert_eq!(got.len(), 2, "exactly one copy: {got:?}");
    for r in &got {
        assert_eq!(r.delivery, row.delivery(), "{r:?}");
        assert!(r.signed, "signature does not verify: {r:?}");
        assert_eq!(r.path, sites[0].paths[0]);
        assert_eq!((r.hazard_id, r.action.as_str()), (row.hazard_id, "opened"));
    }
    // One transition paged: the tank item's opening. (Until its first
    // readings the building had no data: those items page nobody here.)
    let transitions = transitions(&db).await;
    assert!(
        transitions.iter().all(|t| t.planned_ms.is_some()),
        "{transitions:?}"
    );
    let tank: Vec<&Transition> = transitions
        .iter()
        .filter(|t| t.code == "tank_volume_low")
        .collect();
    assert_eq!(tank.len(), 1, "{transitions:?}");
    assert_eq!(
        (tank[0].id, tank[0].action.as_str()),
        (row.transition_id, "opened")
    );
}

// ---------------------------------------------------------------------------
// Random crashes

/// SplitMix64: a seeded sequence, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, below: u64) -> Duration {
        Duration::from_millis(self.below(below))
    }
}

/// Buildings of the random test, each with its own contractor.
const BUILDINGS: usize = 6;
/// Webhook targets per contractor: recipients per transition.
const TARGETS: usize = 2;
/// Each building's tank by turns (opened, resolved, reopened, resolved):
/// four messages per recipient, under the rate limit of 5 in 10 minutes.
const LEVELS: [f64; 4] = [LOW, FULL, LOW, FULL];
const ACTIONS: [&str; 4] = ["opened", "resolved", "reopened", "resolved"];
const KILLS: usize = 10;
const SEED: u64 = 0x0A1E_27C2_A5E5;

/// Where a round ends in a SIGKILL.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// While the receiver holds its answer to a request: between a send
    /// and its mark.
    BeforeAnswer,
    /// This many more requests received, then this long: between a mark
    /// and the next claim, or in the middle of sends.
    AfterRequests(usize, Duration),
    /// This many more transitions committed, then this long: between the
    /// judging commit and its planning, or in the middle of planning.
    AfterTransitions(usize, Duration),
    /// This long after the node printed its address: while it resumes
    /// (judging at start, leftover rows, redelivered messages).
    AfterStart(Duration),
}

impl Moment {
    fn pick(rng: &mut Rng) -> Self {
        match rng.below(4) {
            0 => Moment::BeforeAnswer,
            1 => Moment::AfterRequests(1 + rng.below(4) as usize, rng.millis(60)),
            2 => Moment::AfterTransitions(1 + rng.below(3) as usize, rng.millis(60)),
            _ => Moment::AfterStart(rng.millis(400)),
        }
    }
}

/// What can be seen of the node's progress.
#[derive(Debug)]
struct Progress {
    /// Tank transitions committed, per building.
    visible: Vec<usize>,
    transitions: usize,
    requests: usize,
    pending: usize,
    unplanned: usize,
}

/// The random test's gateway side: publishes each building's next level
/// once its previous one has been judged (so every change is a transition
/// of its own), a random subset at a time, at most `budget` in a round.
struct Feed<'a> {
    sites: &'a [Site],
    publisher: &'a Publisher,
    hooks: &'a Hooks,
    db: &'a SqlitePool,
    published: Vec<usize>,
    budget: usize,
    rng: Rng,
}

impl Feed<'_> {
    async fn progress(&self) -> Progress {
        let transitions = transitions(self.db).await;
        let visible = self
            .sites
            .iter()
            .map(|s| {
                transitions
                    .iter()
                    .filter(|t| t.building == s.spec.id && t.code == "tank_volume_low")
                    .count()
            })
            .collect();
        let states: Vec<(String,)> = sqlx::query_as("SELECT state FROM notifications")
            .fetch_all(self.db)
            .await
            .unwrap();
        Progress {
            visible,
            transitions: transitions.len(),
            requests: self.hooks.count(),
            pending: states.iter().filter(|(s,)| s == "pending").count(),
            unplanned: transitions
                .iter()
                .filter(|t| t.planned_ms.is_none())
                .count(),
        }
    }

    fn all_published(&self) -> bool {
        self.published.iter().all(|&p| p == LEVELS.len())
    }

    /// Nothing more will happen: what was published has been judged,
    /// planned and delivered, and nothing more may be published.
    fn idle(&self, p: &Progress) -> bool {
        (self.budget == 0 || self.all_published())
            && p.visible.iter().zip(&self.published).all(|(v, p)| v >= p)
            && p.pending == 0
            && p.unplanned == 0
    }

    async fn feed(&mut self, p: &Progress) {
        for b in 0..self.sites.len() {
            let next = self.published[b];
            if self.budget == 0 || next == LEVELS.len() || p.visible[b] < next {
                continue;
            }
            if self.rng.below(2) == 0 {
                continue;
            }
            publish_level(
                self.publisher,
                &self.sites[b],
                next as u64 + 1,
                LEVELS[next],
            )
            .await;
            self.published[b] += 1;
            self.budget -= 1;
        }
    }

    /// Feeds until `reached` (then `Some`) or until [`Feed::idle`]
    /// (`None`).
    async fn drive(
        &mut self,
        what: &str,
        mut reached: impl FnMut(&Progress) -> bool,
    ) -> Option<Progress> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let progress = self.progress().await;
            if reached(&progress) {
                return Some(progress);
            }
            if self.idle(&progress) {
                return None;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}: {progress:?}, published {:?}",
                self.published
            );
            self.feed(&progress).await;
            let tripped = self.hooks.tripped.notified();
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tripped => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_at_random_moments_loses_and_duplicates_no_alert() {
    init_tracing();
    let seed = std::env::var("RISER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    println!("seed {seed} (RISER_CRASH_SEED repeats a run)");
    let (hooks_addr, hooks) = Hooks::start().await;
    let sites: Vec<Site> = (1..=BUILDINGS).map(|n| Site::new(n, TARGETS)).collect();
    let setup = Setup::new(&sites, hooks_addr).await;
    let publisher = Publisher::connect(setup.broker.port, "crash-test-gateways");

    let node = Node::start(&setup).await;
    node.wait_subscribed().await;
    let db = setup.database().await;
    let mut feed = Feed {
        sites: &sites,
        publisher: &publisher,
        hooks: &hooks,
        db: &db,
        published: vec![0; sites.len()],
        budget: 0,
        rng: Rng(seed),
    };
    let mut node = Some(node);
    let mut trapped = Vec::new();
    let mut reached = 0;
    for round in 0..KILLS {
        let running = match node.take() {
            Some(n) => n,
            None => Node::start(&setup).await,
        };
        let moment = Moment::pick(&mut feed.rng);
        feed.budget = 1 + feed.rng.below(4) as usize;
        let start = feed.progress().await;
        let what = format!("round {round}: {moment:?}");
        let at = match moment {
            Moment::BeforeAnswer => {
                hooks.arm();
                feed.drive(&what, |_| hooks.tripped().is_some()).await
            }
            Moment::AfterRequests(n, then) => {
                let at = feed
                    .drive(&what, |p| p.requests >= start.requests + n)
                    .await;
                tokio::time::sleep(then).await;
                at
            }
            Moment::AfterTransitions(n, then) => {
                let at = feed
                    .drive(&what, |p| p.transitions >= start.transitions + n)
                    .await;
                tokio::time::sleep(then).await;
                at
            }
            Moment::AfterStart(after) => {
                let until = tokio::time::Instant::now() + after;
                feed.drive(&what, |_| tokio::time::Instant::now() >= until)
                    .await;
                tokio::time::sleep_until(until).await;
                Some(feed.progress().await)
            }
        };
        running.kill().await;
        if let Some(held) = hooks.tripped() {
            trapped.push(held.delivery);
        }
        hooks.release();
        match at {
            Some(p) => {
                reached += 1;
                println!(
                    "{what}: killed at {} transitions, {} requests received, {} rows pending",
                    p.transitions, p.requests, p.pending
                );
            }
            None => println!("{what}: killed idle, the round's work done"),
        }
    }

    // The last start: everything is published, judged, planned and sent.
    let node = Node::start(&setup).await;
    feed.budget = usize::MAX;
    feed.drive("everything to settle", |_| false).await;
    node.kill().await;
    assert!(feed.all_published(), "published {:?}", feed.published);

    let transitions = transitions(&db).await;
    let rows = notifications(&db).await;
    let got = hooks.got();

    // Every change of every tank is one transition, planned.
    for site in &sites {
        let actions: Vec<&str> = transitions
            .iter()
            .filter(|t| t.building == site.spec.id && t.code == "tank_volume_low")
            .map(|t| t.action.as_str())
            .collect();
        assert_eq!(actions, ACTIONS, "{}", site.spec.id);
    }
    let unplanned: Vec<&Transition> = transitions
        .iter()
        .filter(|t| t.planned_ms.is_none())
        .collect();
    assert!(unplanned.is_empty(), "never planned: {unplanned:?}");

    // Rows = transitions × recipients: each tank transition one row per
    // contractor target, nothing else paged anyone.
    let mut tank_transitions = 0;
    for t in &transitions {
        let mut paths: Vec<String> = rows
            .iter()
            .filter(|r| r.transition_id == t.id)
            .map(Row::path)
            .collect();
        paths.sort_unstable();
        let want: Vec<String> = if t.code == "tank_volume_low" {
            tank_transitions += 1;
            let site = sites.iter().find(|s| s.spec.id == t.building).unwrap();
            site.paths.clone()
        } else {
            Vec::new()
        };
        assert_eq!(paths, want, "rows of transition {t:?}");
    }
    assert_eq!(rows.len(), tank_transitions * TARGETS);
    let keys: BTreeSet<(i64, &str)> = rows
        .iter()
        .map(|r| (r.transition_id, r.recipient.as_str()))
        .collect();
    assert_eq!(
        keys.len(),
        rows.len(),
        "one row per transition and recipient"
    );

    // Each row ended sent, or suppressed: a clearing whose item was
    // active again by the time it was (re)sent.
    for r in &rows {
        assert!(
            r.state == "sent" || (r.state == "suppressed" && r.action == "resolved"),
            "{r:?}"
        );
    }

    // What the receiver got: signed, each a row's delivery id at its
    // row's address, about its row's item; every sent row at least once.
    let mut by_delivery: BTreeMap<&str, Vec<&Received>> = BTreeMap::new();
    for r in &got {
        assert!(r.signed, "signature does not verify: {r:?}");
        by_delivery.entry(r.delivery.as_str()).or_default().push(r);
    }
    for (delivery, copies) in &by_delivery {
        let row = rows
            .iter()
            .find(|r| r.delivery() == *delivery)
            .unwrap_or_else(|| panic!("{delivery} received, but no such row: {copies:?}"));
        for c in copies {
            assert_eq!(
                (c.path.as_str(), c.hazard_id, c.action.as_str()),
                (row.path().as_str(), row.hazard_id, row.action.as_str()),
                "{delivery}"
            );
        }
    }
    let lost: Vec<&Row> = rows
        .iter()
        .filter(|r| r.state == "sent" && !by_delivery.contains_key(r.delivery().as_str()))
        .collect();
    assert!(lost.is_empty(), "marked sent, never received: {lost:?}");
    // A message held while its node died was sent again with its id, or
    // its item had become active again (a clearing then pages no one).
    for delivery in &trapped {
        let row = rows.iter().find(|r| &r.delivery() == delivery).unwrap();
        assert!(
            by_delivery[delivery.as_str()].len() >= 2 || row.state == "suppressed",
            "{row:?}"
        );
    }

    let repeats: usize = by_delivery.values().map(|c| c.len() - 1).sum();
    let suppressed: Vec<&Row> = rows.iter().filter(|r| r.state == "suppressed").collect();
    // A clearing sent before a crash and suppressed when it came up again.
    let suppressed_after_sending = suppressed
        .iter()
        .filter(|r| by_delivery.contains_key(r.delivery().as_str()))
        .count();
    println!(
        "{KILLS} kills ({reached} at their moment): {} transitions, {} rows ({} suppressed, \
         {suppressed_after_sending} of them after a copy had gone out), {} requests \
         received for {} delivery ids: {repeats} repeats, all with the same delivery id; \
         {} kills while an answer was held",
        transitions.len(),
        rows.len(),
        suppressed.len(),
        got.len(),
        by_delivery.len(),
        trapped.len()
    );
}
