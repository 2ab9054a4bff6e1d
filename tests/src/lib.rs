//! Helpers for the workspace's end-to-end tests: a real Mosquitto broker of
//! the test's own, free ports, a tiny HTTP client and condition polling.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A port the OS says is free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

fn mosquitto_binary() -> anyhow::Result<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let candidate = Path::new(dir).join("mosquitto");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("mosquitto not found; run scripts/test, which installs it")
}

/// A Mosquitto broker of this test's own on a free loopback port, with
/// persistence in a temp dir so persistent sessions survive a restart.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf)?;
        let mut broker = Self {
            port,
            dir,
            child: None,
        };
        broker.resume().await?;
        Ok(broker)
    }

    /// A broker like [`Mosquitto::start`] without persistence, for
    /// benchmarks: nothing is saved to disk under load, and a client's
    /// queue holds up to 100 000 messages.
    pub async fn start_in_memory() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nlog_dest stderr\nlog_type error\nlog_type warning\n"
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf)?;
        let mut broker = Self {
            port,
            dir,
            child: None,
        };
        broker.resume().await?;
        Ok(broker)
    }

    /// Starts (again) on the same port with the same persistence.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let child = Command::new(mosquitto_binary()?)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .spawn()
            .context("starting mosquitto")?;
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually(
            "mosquitto to listen",
            Duration::from_secs(10),
            || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await;
        Ok(())
    }

    /// Stops the broker the way a service manager does (SIGTERM), so it
    /// saves its persistent sessions, and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 100 ms until it gives `Some`; panics after `limit`
/// naming what it waited for.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET` over plain HTTP/1.1; returns the status code and the JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = get_text(addr, path).await?;
    Ok((
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// `GET` over plain HTTP/1.1; returns the status code and the body.
pub async fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8(response)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, body.to_owned()))
}

/// Logs to the test output, once per process; `RUST_LOG` filters.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Two linked pseudo-terminals made by `socat`, like the two ends of an
/// RS-485 line: whatever is written to one is read from the other.
pub struct PtyPair {
    pub a: PathBuf,
    pub b: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl PtyPair {
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let end = |p: &Path| format!("pty,raw,echo=0,link={}", p.display());
        let child = Command::new("socat")
            .args([end(&a), end(&b)])
            .stderr(Stdio::null())
            .spawn()
            .context("starting socat (scripts/test installs it)")?;
        let pair = Self {
            a,
            b,
            _dir: dir,
            child,
        };
        let (a, b) = (pair.a.clone(), pair.b.clone());
        eventually("socat's pseudo-terminals", Duration::from_secs(10), || {
            let ready = a.exists() && b.exists();
            async move { ready.then_some(()) }
        })
        .await;
        Ok(pair)
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One simulated building answering as RS-485 slaves (units 1-4) on one end
/// of a socat pty pair, and the gateway's line and devices for the other end.
pub struct RtuRig {
    pub sim: riser_sim::SimHandle,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub line: riser_gateway::config::LineConfig,
    pub devices: Vec<riser_gateway::config::DeviceConfig>,
    _pty: PtyPair,
}

impl RtuRig {
    /// `baud` sets the line config; `timing` whether device-sim paces answers
    /// by their wire time at some baud.
    pub async fn start(
        building: &str,
        baud: u32,
        timing: riser_sim::LineTiming,
    ) -> anyhow::Result<Self> {
        use riser_gateway::config::{LineConfig, MqttConfig, Transport};
        use riser_sim::{BuildingSpec, Sim, SimOptions, serve_rtu, site};
        let pty = PtyPair::new().await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let spec = BuildingSpec::example(building);
        let sim = Sim::start(vec![spec.clone()], SimOptions::default(), shutdown.clone()).await?;
        let port =
            tokio_serial::SerialStream::open(&tokio_serial::new(pty.a.to_string_lossy(), baud))?;
        let (served, id, stop) = (sim.sim(), spec.id.clone(), shutdown.clone());
        tokio::spawn(async move { serve_rtu(served, &id, port, timing, stop).await });
        let config = site::gateway_config(
            &spec,
            sim.buildings[0].modbus_addr,
            MqttConfig::default(),
            "unused".into(),
            1000,
        );
        let line = LineConfig {
            transport: Transport::Rtu,
            address: None,
            path: Some(pty.b.clone()),
            baud,
            ..config.lines[0].clone()
        };
        Ok(Self {
            sim,
            shutdown,
            line,
            devices: config.devices,
            _pty: pty,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.sim.join().await;
    }
}

/// A TCP link that can be cut: a loopback proxy in front of `target`, as the
/// 4G link between a gateway and its broker. [`Link::cut`] drops every
/// connection and refuses new ones until [`Link::restore`]; the broker
/// and everything else connected to it directly keep running.
pub struct Link {
    pub port: u16,
    state: std::sync::Arc<std::sync::Mutex<LinkState>>,
    counts: std::sync::Arc<LinkCounts>,
    task: tokio::task::JoinHandle<()>,
}

/// Bytes that crossed the link (MQTT and above; not TCP/IP headers),
/// added when a connection closes.
#[derive(Default)]
pub struct LinkCounts {
    pub open: std::sync::atomic::AtomicU64,
    pub bytes_up: std::sync::atomic::AtomicU64,
    pub bytes_down: std::sync::atomic::AtomicU64,
}

struct LinkState {
    up: bool,
    connections: tokio_util::sync::CancellationToken,
}

impl Link {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = std::sync::Arc::new(std::sync::Mutex::new(LinkState {
            up: true,
            connections: tokio_util::sync::CancellationToken::new(),
        }));
        let shared = state.clone();
        let counts = std::sync::Arc::new(LinkCounts::default());
        let counting = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let cancel = {
                    let state = shared.lock().unwrap();
                    if !state.up {
                        continue; // dropped: the link is down
                    }
                    state.connections.clone()
                };
                let counts = counting.clone();
                tokio::spawn(async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    counts.open.fetch_add(1, SeqCst);
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        copied = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {
                            if let Ok((up, down)) = copied {
                                counts.bytes_up.fetch_add(up, SeqCst);
                                counts.bytes_down.fetch_add(down, SeqCst);
                            }
                        }
                    }
                    counts.open.fetch_sub(1, SeqCst);
                });
            }
        });
        Ok(Self {
            port,
            state,
            counts,
            task,
        })
    }

    /// Drops every connection through the link and refuses new ones.
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.up = false;
        state.connections.cancel();
        state.connections = tokio_util::sync::CancellationToken::new();
    }

    pub fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }

    /// What crossed the link on connections that have closed.
    pub fn counts(&self) -> &LinkCounts {
        &self.counts
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        self.state.lock().unwrap().connections.cancel();
    }
}

/// A cloud-ingest config for a test: SQLite in `data_dir`, the API on a
/// free port, consuming from the broker on `broker_port` as
/// `riser-ingest-{name}`.
pub fn ingest_config(data_dir: &Path, broker_port: u16, name: &str) -> riser_ingest::Config {
    toml::from_str(&format!(
        r#"
        data_dir = "{}"
        registry = "unused"
        [http]
        listen = "127.0.0.1:0"
        [mqtt]
        broker = "127.0.0.1:{broker_port}"
        client_id = "riser-ingest-{name}"
        # These tests read the API without signing in (read-only).
        [auth]
        anonymous = "installer"
        "#,
        data_dir.display(),
    ))
    .expect("a valid ingest config")
}

/// The PostgreSQL server the tests use: `RISER_TEST_DATABASE_URL`
/// (`postgres://user@host:port`), else the one `scripts/test` starts,
/// `postgres://postgres@127.0.0.1:5432` (trust authentication).
pub fn postgres_server() -> String {
    std::env::var("RISER_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty PostgreSQL database of this test's own, named
/// `riser_test_{label}_{pid}_{n}` (so `scripts/test` drops any left over).
pub struct PgDatabase {
    /// Its URL, for `database_url`.
    pub url: String,
    name: String,
    server: String,
}

impl PgDatabase {
    /// Creates it on [`postgres_server`]; fails, saying so, if the server
    /// does not answer: a test that needs PostgreSQL never skips silently.
    pub async fn create(label: &str) -> anyhow::Result<Self> {
        use sqlx::{Connection, Executor};
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server = postgres_server();
        let name = format!(
            "riser_test_{label}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| {
                format!("PostgreSQL at {server} does not answer (scripts/test installs and starts it; RISER_TEST_DATABASE_URL names another)")
            })?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await?;
        Ok(Self {
            url: format!("{server}/{name}"),
            name,
            server,
        })
    }

    /// A connection of the test's own, to look at what was stored.
    pub async fn connect(&self) -> anyhow::Result<sqlx::PgConnection> {
        use sqlx::Connection;
        Ok(sqlx::PgConnection::connect(&self.url).await?)
    }

    /// Drops it, closing whatever is still connected.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// An MQTT client publishing at QoS 1 as gateways do, counting the
/// broker's acknowledgements.
pub struct Publisher {
    client: rumqttc::AsyncClient,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connects (clean session) to the broker on loopback `port`.
    pub fn connect(port: u16, client_id: &str) -> Self {
        let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        options
            .set_inflight(200)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counting = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                        counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(error = %error, "test publisher lost the broker; reconnecting");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Self {
            client,
            acked,
            task,
        }
    }

    /// Queues one message at QoS 1.
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Messages the broker has acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The executable `name` of another package of this workspace (e.g.
/// `riser-ingest` of `cloud-ingest`), from the target dir this test was
/// built into. Cargo hands integration tests only their own package's
/// binaries (`CARGO_BIN_EXE_*`), so something else must have built it:
/// `cargo nextest run --workspace`, or `cargo build --bin <name>`. Fails,
/// saying so, when it is missing or older than the package's `src/`,
/// `migrations/` or `Cargo.toml` (a stale binary would test old code).
pub fn workspace_binary(name: &str, package_dir: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable outside a target dir")?;
    let binary = profile_dir.join(name);
    let package = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(package_dir);
    let build =
        format!("build it first: cargo build --bin {name} (cargo nextest run --workspace does)");
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .with_context(|| format!("{} not found; {build}", binary.display()))?;
    let mut sources = vec![package.join("Cargo.toml")];
    let mut dirs = vec![package.join("src"), package.join("migrations")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    for source in sources {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        if changed.is_ok_and(|changed| changed > built) {
            bail!(
                "{} is older than {}; {build}",
                binary.display(),
                source.display()
            );
        }
    }
    Ok(binary)
}
