//! The InfluxDB sink against a real server that speaks the InfluxDB 2 write
//! API: VictoriaMetrics (Debian's `victoria-metrics`, which scripts/test
//! installs), one process per test on a free port with its own storage in a
//! temp dir. Not InfluxDB 2 itself; see the `influx` module doc.
//!
//! VictoriaMetrics stores field `f` of measurement `reading` as the metric
//! `reading_f`, tags as labels, and keeps every sample it is sent (no
//! deduplication unless configured), so counting samples shows whether a
//! point arrived exactly once.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riser_contract::{ClockFlag, Quality, Reading, Telemetry};
use riser_ingest::influx::{InfluxConfig, Sink, SinkStats};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// Polls `check` every 20 ms until it gives `Some`; panics after 20 s
/// naming what it waited for.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// `GET` over HTTP/1.0 (so no chunked body); the status and the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn victoria_metrics_binary() -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/local/bin"])
        .map(|dir| Path::new(dir).join("victoria-metrics"))
        .find(|p| p.is_file())
        .expect("victoria-metrics not found; run scripts/test, which installs it")
}

/// A VictoriaMetrics of this test's own on a free loopback port, storage in
/// a temp dir (kept across [`VictoriaMetrics::stop`] and `resume`).
struct VictoriaMetrics {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl VictoriaMetrics {
    /// Chooses a port and a storage dir but does not start: an outage.
    fn stopped() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    async fn start() -> Self {
        let mut vm = Self::stopped();
        vm.resume().await;
        vm
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn resume(&mut self) {
        let child = Command::new(victoria_metrics_binary())
            .arg(format!("-storageDataPath={}", self.dir.path().display()))
            .arg(format!("-httpListenAddr={}", self.addr))
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting victoria-metrics");
        self.child = Some(child);
        let addr = self.addr;
        eventually("VictoriaMetrics to answer /health", || async move {
            matches!(get(addr, "/health").await, Ok((200, _))).then_some(())
        })
        .await;
    }

    /// SIGTERM, as a service manager does (it flushes its storage), and
    /// waits for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }

    /// Every stored sample of the `reading_*` metrics.
    async fn samples(&self) -> Vec<Sample> {
        let (status, _) = get(self.addr, "/internal/force_flush").await.unwrap();
        assert_eq!(status, 200, "force_flush");
        let matcher: String =
            url::form_urlencoded::byte_serialize(br#"{__name__=~"reading_.*"}"#).collect();
        let (status, body) = get(self.addr, &format!("/api/v1/export?match[]={matcher}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "export: {body}");
        let mut samples = Vec::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let series: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(series["metric"].clone()).unwrap();
            let name = labels.remove("__name__").unwrap();
            let values = series["values"].as_array().unwrap();
            let times = series["timestamps"].as_array().unwrap();
            for (value, ts) in values.iter().zip(times) {
                samples.push(Sample {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: value.as_f64().unwrap(),
                    ts_ms: ts.as_i64().unwrap(),
                });
            }
        }
        samples.sort_by(|a, b| (&a.name, &a.labels, a.ts_ms).cmp(&(&b.name, &b.labels, b.ts_ms)));
        samples
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    ts_ms: i64,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Ten minutes ago, to the millisecond (what the sink keeps), so the
/// samples are well inside VictoriaMetrics' retention.
fn t0() -> OffsetDateTime {
    let now = riser_contract::unix_ms(OffsetDateTime::now_utc());
    riser_contract::from_unix_ms(now - 600_000).unwrap()
}

fn ms(t: OffsetDateTime) -> i64 {
    riser_contract::unix_ms(t)
}

fn good(point: &str, ts: OffsetDateTime, value: f64) -> Reading {
    Reading {
        point: point.into(),
        ts,
        value: Some(value),
        unit: Some("m".into()),
        quality: Quality::Good,
        exception: None,
        clock: None,
    }
}

/// `n` tank levels one second apart from `start`; value `base + i`.
fn levels(start: OffsetDateTime, n: usize, base: f64) -> Vec<Reading> {
    (0..n)
        .map(|i| {
            good(
                "tank.level",
                start + time::Duration::seconds(i as i64),
                base + i as f64,
            )
        })
        .collect()
}

fn config(url: &str) -> InfluxConfig {
    let mut config = InfluxConfig::new(url, "riser", "telemetry", "test-token");
    config.flush_interval_ms = 20;
    config.retry_max_ms = 100;
    config.request_timeout_ms = 5_000;
    config
}

struct Running {
    sink: Sink,
    stats: Arc<SinkStats>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn open(config: InfluxConfig, data_dir: &Path) -> Self {
        let sink = Sink::open(config, data_dir).await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(sink.clone().run(stop.clone()));
        Self {
            stats: sink.stats(),
            sink,
            stop,
            task,
        }
    }

    fn load(&self, f: impl Fn(&SinkStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        f(&self.stats).load(Ordering::Relaxed)
    }

    /// Waits until `n` points in all were written and nothing waits.
    async fn written(&self, n: u64) {
        let stats = self.stats.clone();
        eventually(&format!("{n} points written"), || {
            let stats = stats.clone();
            async move {
                (stats.written_points.load(Ordering::Relaxed) == n
                    && stats.backlog_points.load(Ordering::Relaxed) == 0)
                    .then_some(())
            }
        })
        .await;
    }

    /// Waits for `n` more failed attempts than `since`.
    async fn failed_more_than(&self, since: u64, n: u64) {
        let stats = self.stats.clone();
        eventually("failed write attempts", || {
            let stats = stats.clone();
            async move { (stats.failed_attempts.load(Ordering::Relaxed) >= since + n).then_some(()) }
        })
        .await;
    }

    async fn shut_down(self) {
        self.stop.cancel();
        self.task.await.unwrap();
        self.sink.close().await;
    }
}

/// The `reading_value` samples of `tank.level` as (time, value).
fn level_samples(samples: &[Sample]) -> Vec<(i64, f64)> {
    samples
        .iter()
        .filter(|s| s.name == "reading_value" && s.labels["point"] == "tank.level")
        .map(|s| (s.ts_ms, s.value))
        .collect()
}

fn expected_levels(start: OffsetDateTime, n: usize, base: f64) -> Vec<(i64, f64)> {
    levels(start, n, base)
        .iter()
        .map(|r| (ms(r.ts), r.value.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_reaches_influx_with_its_tags_and_times() {
    init_tracing();
    let vm = VictoriaMetrics::start().await;
    let data = tempfile::tempdir().unwrap();
    let running = Running::open(config(&vm.url()), data.path()).await;

    let t0 = t0();
    let at = |millis: i64| t0 + time::Duration::milliseconds(millis);
    let mut pressure = good("riser.pressure", at(1_500), 0.31);
    pressure.unit = Some("MPa".into());
    pressure.clock = Some(ClockFlag::Restamped);
    let unreachable = Reading {
        point: "pump.run".into(),
        ts: at(2_000),
        value: None,
        unit: None,
        quality: Quality::Unreachable,
        exception: None,
        clock: None,
    };
    let exception = Reading {
        point: "riser.pressure".into(),
        ts: at(3_007),
        value: None,
        unit: Some("MPa".into()),
        quality: Quality::Exception,
        exception: Some(2),
        clock: None,
    };
    let mut live = Telemetry::new(
        "gw-B2",
        1,
        vec![
            good("tank.level", at(0), 2.95),
            pressure,
            unreachable,
            exception,
        ],
    );
    running.sink.enqueue_telemetry(&live).await.unwrap();
    live.seq = 2;
    live.replay = true;
    live.readings = vec![good("tank.level", at(-60_000), 3.05)];
    running.sink.enqueue_telemetry(&live).await.unwrap();
    running
        .sink
        .enqueue("gw-B1", &[good("tank.level", at(250), 1.5)])
        .await
        .unwrap();
    running.written(6).await;
    assert_eq!(running.load(|s| &s.enqueued_points), 6);
    assert_eq!(running.load(|s| &s.failed_attempts), 0);
    assert!(running.stats.up.load(Ordering::Relaxed));

    let samples = vm.samples().await;
    let sample = |name: &str, l: &[(&str, &str)], value: f64, ts: OffsetDateTime| Sample {
        name: name.into(),
        labels: labels(l),
        value,
        ts_ms: ms(ts),
    };
    let level_b2 = [
        ("gateway", "gw-B2"),
        ("point", "tank.level"),
        ("quality", "good"),
        ("unit", "m"),
    ];
    let pressure_good = [
        ("gateway", "gw-B2"),
        ("point", "riser.pressure"),
        ("quality", "good"),
        ("unit", "MPa"),
    ];
    let pressure_exception = [
        ("gateway", "gw-B2"),
        ("point", "riser.pressure"),
        ("quality", "exception"),
        ("unit", "MPa"),
    ];
    let pump = [
        ("gateway", "gw-B2"),
        ("point", "pump.run"),
        ("quality", "unreachable"),
    ];
    let level_b1 = [
        ("gateway", "gw-B1"),
        ("point", "tank.level"),
        ("quality", "good"),
        ("unit", "m"),
    ];
    let mut expected = vec![
        sample("reading_value", &level_b2, 2.95, at(0)),
        sample("reading_value", &level_b2, 3.05, at(-60_000)),
        sample("reading_replay", &level_b2, 1.0, at(-60_000)),
        sample("reading_value", &pressure_good, 0.31, at(1_500)),
        // VictoriaMetrics keeps a string field as 0; InfluxDB keeps "restamped".
        sample("reading_clock", &pressure_good, 0.0, at(1_500)),
        sample("reading_no_value", &pump, 1.0, at(2_000)),
        sample("reading_no_value", &pressure_exception, 1.0, at(3_007)),
        sample("reading_exception", &pressure_exception, 2.0, at(3_007)),
        sample("reading_value", &level_b1, 1.5, at(250)),
    ];
    expected.sort_by(|a, b| (&a.name, &a.labels, a.ts_ms).cmp(&(&b.name, &b.labels, b.ts_ms)));
    assert_eq!(samples, expected);

    let mut metrics = String::new();
    running.stats.render(&mut metrics);
    assert!(
        metrics.contains("riser_ingest_influx_written_points_total 6\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("riser_ingest_influx_backlog_points 0\n"),
        "{metrics}"
    );
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_influx_outage_loses_nothing() {
    init_tracing();
    // The port is chosen, nothing listens yet: InfluxDB is down.
    let mut vm = VictoriaMetrics::stopped();
    let data = tempfile::tempdir().unwrap();
    let running = Running::open(config(&vm.url()), data.path()).await;
    let t0 = t0();
    let second = |s: i64| t0 + time::Duration::seconds(s);

    for (i, start) in [0, 10, 20].into_iter().enumerate() {
        running
            .sink
            .enqueue("gw-B2", &levels(second(start), 10, 100.0 * i as f64))
            .await
            .unwrap();
    }
    running.failed_more_than(0, 3).await;
    assert_eq!(running.load(|s| &s.written_points), 0);
    assert_eq!(running.load(|s| &s.backlog_points), 30);
    assert_eq!(running.load(|s| &s.backlog_messages), 3);
    assert!(!running.stats.up.load(Ordering::Relaxed));

    vm.resume().await;
    running.written(30).await;

    // A second outage, after the client had a live connection to it.
    vm.stop();
    let failed = running.load(|s| &s.failed_attempts);
    running
        .sink
        .enqueue("gw-B2", &levels(second(30), 10, 300.0))
        .await
        .unwrap();
    running.failed_more_than(failed, 2).await;
    assert_eq!(running.load(|s| &s.backlog_points), 10);
    vm.resume().await;
    running
        .sink
        .enqueue("gw-B2", &levels(second(40), 10, 400.0))
        .await
        .unwrap();
    running.written(50).await;

    let mut expected = Vec::new();
    for (i, start) in [0, 10, 20, 30, 40].into_iter().enumerate() {
        expected.extend(expected_levels(second(start), 10, 100.0 * i as f64));
    }
    assert_eq!(
        level_samples(&vm.samples().await),
        expected,
        "every reading exactly once, at its time"
    );
    assert_eq!(running.load(|s| &s.enqueued_points), 50);
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_the_backlog() {
    init_tracing();
    let mut vm = VictoriaMetrics::stopped();
    let data = tempfile::tempdir().unwrap();
    let t0 = t0();
    let second = |s: i64| t0 + time::Duration::seconds(s);

    let first = Running::open(config(&vm.url()), data.path()).await;
    first
        .sink
        .enqueue("gw-B2", &levels(second(0), 7, 10.0))
        .await
        .unwrap();
    first
        .sink
        .enqueue("gw-B2", &levels(second(7), 5, 20.0))
        .await
        .unwrap();
    first.failed_more_than(0, 1).await;
    let backlog = first.sink.backlog_path().to_owned();
    assert_eq!(backlog, data.path().join("influx-backlog.db"));
    first.shut_down().await;

    vm.resume().await;
    let second_run = Running::open(config(&vm.url()), data.path()).await;
    assert_eq!(
        second_run.load(|s| &s.backlog_messages),
        2,
        "counted from disk"
    );
    second_run.written(12).await;

    let mut expected = expected_levels(second(0), 7, 10.0);
    expected.extend(expected_levels(second(7), 5, 20.0));
    assert_eq!(level_samples(&vm.samples().await), expected);
    second_run.shut_down().await;

    let third = Sink::open(config(&vm.url()), data.path()).await.unwrap();
    assert_eq!(
        third.stats().backlog_messages.load(Ordering::Relaxed),
        0,
        "sent rows are gone from the backlog"
    );
    third.close().await;
}

/// A stub `/api/v2/write` that answers 400 to any body naming `poison`
/// (as InfluxDB does to a line it cannot parse) and keeps what it accepts.
async fn refusing_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    use axum::http::StatusCode;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let kept = accepted.clone();
    let app = axum::Router::new().route(
        "/api/v2/write",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                if body.contains("poison") {
                    (StatusCode::BAD_REQUEST, "unable to parse 'poison'")
                } else {
                    kept.lock().unwrap().extend(body.lines().map(str::to_owned));
                    (StatusCode::NO_CONTENT, "")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_influx_refuses_is_set_aside_and_the_rest_still_arrive() {
    init_tracing();
    let (addr, accepted) = refusing_server().await;
    let data = tempfile::tempdir().unwrap();
    // Whether the three go in one batch or two, the poison is isolated.
    let running = Running::open(config(&format!("http://{addr}")), data.path()).await;
    let t0 = t0();
    running
        .sink
        .enqueue("gw-B2", &levels(t0, 3, 1.0))
        .await
        .unwrap();
    running
        .sink
        .enqueue(
            "gw-B2",
            &[good("poison", t0, 0.0), good("tank.level", t0, 9.0)],
        )
        .await
        .unwrap();
    running
        .sink
        .enqueue("gw-B2", &levels(t0 + time::Duration::seconds(3), 2, 4.0))
        .await
        .unwrap();
    let stats = running.stats.clone();
    eventually("the backlog to drain", || {
        let stats = stats.clone();
        async move { (stats.backlog_messages.load(Ordering::Relaxed) == 0).then_some(()) }
    })
    .await;
    assert_eq!(running.load(|s| &s.written_points), 5);
    assert_eq!(running.load(|s| &s.refused_points), 2);
    assert_eq!(
        running.load(|s| &s.failed_attempts),
        0,
        "refused is not retried"
    );

    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 5, "{accepted:?}");
    assert!(accepted.iter().all(|l| !l.contains("poison")));
    let refused = running.sink.refused().await.unwrap();
    assert_eq!(refused.len(), 1);
    let (points, lines, error) = &refused[0];
    assert_eq!(*points, 2);
    assert!(lines.contains("point=poison"), "{lines}");
    assert!(
        error.contains("400") && error.contains("unable to parse"),
        "{error}"
    );
    running.shut_down().await;
}
