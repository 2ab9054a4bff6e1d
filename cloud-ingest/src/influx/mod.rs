//! Telemetry to InfluxDB 2, through a durable backlog: an InfluxDB outage
//! loses nothing.
//!
//! [`Sink::enqueue`] appends one message's readings, as line protocol, to
//! a SQLite backlog of its own (`influx-backlog.db` in the data directory,
//! WAL, `synchronous=FULL`): one insert, on disk when it returns, so the
//! consumer calls it after its own commit and before the MQTT
//! acknowledgement. [`Sink::run`] sends the backlog oldest first, up to
//! `batch_max_points` per request, at least every `flush_interval_ms`, and
//! deletes rows only after InfluxDB answered `204`. While InfluxDB is
//! unreachable or failing it retries the same batch with a wait doubling
//! from 250 ms up to `retry_max_ms`; it logs the failure once (WARN; ERROR
//! when the token or bucket is refused: 401/403/404, an operator must act)
//! and the recovery once (INFO). A batch refused as invalid (400, 413, 422)
//! is resent one message at a time; a message refused on its own is moved
//! to the backlog's `refused` table (ERROR) instead of blocking the rest.
//! [`SinkStats`] counts it all for `/metrics`.
//!
//! Delivery is at least once: a write that reached InfluxDB but whose
//! answer was lost is sent again. InfluxDB 2 keeps one point per series
//! and timestamp, so the second write overwrites the first with the same
//! values.
//!
//! # Schema
//!
//! One point per reading, measurement `reading`:
//!
//! | kind  | name        | what |
//! |-------|-------------|------|
//! | tag   | `gateway`   | gateway id |
//! | tag   | `point`     | `{device}.{point}`, e.g. `tank.level` |
//! | tag   | `quality`   | `good`, `unreachable`, `exception`, `sensor_fault`, `stale` |
//! | tag   | `unit`      | engineering unit; absent when the reading has none |
//! | field | `value`     | float; absent when the reading has no value |
//! | field | `no_value`  | `true`, only when the reading has no value (unreachable, exception) |
//! | field | `exception` | integer Modbus exception code, with `quality=exception` |
//! | field | `clock`     | string `restamped`, `jumped` or `unsynced`, only when the gateway flagged the time |
//! | field | `replay`    | `true`, only for messages the gateway sent from its backlog ([`Sink::enqueue_telemetry`]) |
//! | time  |             | the reading's `ts`, millisecond precision, as the gateway gave it |
//!
//! A reading without a value is written, not skipped: its quality at its
//! time is the record that the device was unreachable (line protocol
//! needs one field, hence `no_value`). Flags are fields, not tags, so a
//! replayed or restamped reading stays in its point's series. In tag values
//! a line break or backslash becomes `_`; an empty one becomes `_`.
//!
//! # Pointing it at InfluxDB 2
//!
//! Create a bucket and a token allowed to write to it (`influx bucket
//! create -n riser -o <org>`; `influx auth create -o <org>
//! --write-bucket <bucket id>`), then in the ingest config:
//!
//! ```toml
//! [influx]
//! url = "https://influx.example:8086"
//! org = "<org>"
//! bucket = "riser"
//! token = "<token>"   # or RISER_INGEST_INFLUX__TOKEN in the environment
//! # batch_max_points = 5000, flush_interval_ms = 1000, retry_max_ms = 30000,
//! # request_timeout_ms = 10000, backlog_path = "<data_dir>/influx-backlog.db"
//! ```
//!
//! # What was tested
//!
//! Not InfluxDB 2 itself: Debian has none. The tests (`tests/influx.rs`)
//! run the real write path against VictoriaMetrics (Debian's
//! `victoria-metrics` 1.79), which accepts the same `/api/v2/write` line
//! protocol but ignores `org`, `bucket` and the token, stores each field
//! as a metric `reading_<field>` with the tags as labels, stores string
//! fields (`clock`) as 0 and keeps a sample sent twice twice. So token and
//! bucket checks, InfluxDB's own 4xx answers and its overwrite of a resent
//! point are unverified here; the refused-batch path is tested against a
//! stub HTTP server that answers 400.

mod backlog;
mod config;
mod line;

pub use config::{BACKLOG_FILE, InfluxConfig};
pub use line::MEASUREMENT;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use influxdb2::RequestError;
use influxdb2::api::write::TimestampPrecision;
use riser_contract::{Reading, Telemetry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use backlog::{Backlog, Entry};

/// First wait after a failed write; it doubles up to `retry_max_ms`.
const FIRST_RETRY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    #[error("invalid influx config: {0}")]
    Config(String),
    #[error("InfluxDB backlog {path}: {source}")]
    Backlog { path: PathBuf, source: sqlx::Error },
    #[error("cannot create the InfluxDB client: {0}")]
    Client(String),
}

/// Counters of the sink, for `/metrics` ([`SinkStats::render`]).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Points appended to the backlog since start.
    pub enqueued_points: AtomicU64,
    /// Points InfluxDB accepted since start.
    pub written_points: AtomicU64,
    /// Write attempts that failed and will be retried (each retry counts).
    pub failed_attempts: AtomicU64,
    /// Points InfluxDB refused as invalid, set aside in the backlog's
    /// `refused` table, since start.
    pub refused_points: AtomicU64,
    /// Points waiting in the backlog now.
    pub backlog_points: AtomicU64,
    /// Messages (backlog rows) waiting now.
    pub backlog_messages: AtomicU64,
    /// The last write attempt succeeded (false until one has).
    pub up: AtomicBool,
}

impl SinkStats {
    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let metrics = [
            (
                "riser_ingest_influx_enqueued_points_total",
                "counter",
                "Readings appended to the InfluxDB backlog.",
                load(&self.enqueued_points),
            ),
            (
                "riser_ingest_influx_written_points_total",
                "counter",
                "Readings InfluxDB accepted.",
                load(&self.written_points),
            ),
            (
                "riser_ingest_influx_failed_attempts_total",
                "counter",
                "InfluxDB write attempts that failed and are retried.",
                load(&self.failed_attempts),
            ),
            (
                "riser_ingest_influx_refused_points_total",
                "counter",
                "Readings InfluxDB refused as invalid, set aside in the backlog's refused table.",
                load(&self.refused_points),
            ),
            (
                "riser_ingest_influx_backlog_points",
                "gauge",
                "Readings waiting to be sent to InfluxDB.",
                load(&self.backlog_points),
            ),
            (
                "riser_ingest_influx_backlog_messages",
                "gauge",
                "Messages waiting to be sent to InfluxDB.",
                load(&self.backlog_messages),
            ),
            (
                "riser_ingest_influx_up",
                "gauge",
                "1 if the last InfluxDB write succeeded.",
                u64::from(self.up.load(Ordering::Relaxed)),
            ),
        ];
        for (name, kind, help, value) in metrics {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }

    fn sent(&self, entries: &[Entry]) {
        let points: u64 = entries.iter().map(|e| u64::from(e.points)).sum();
        sub(&self.backlog_points, points);
        sub(&self.backlog_messages, entries.len() as u64);
    }
}

fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// The InfluxDB sink: a handle to the backlog and the client; cheap to clone.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

struct Inner {
    config: InfluxConfig,
    path: PathBuf,
    client: influxdb2::Client,
    backlog: Backlog,
    stats: Arc<SinkStats>,
    /// Enough points are waiting for a full batch.
    wake: Notify,
}

/// Why a write did not succeed.
enum WriteError {
    /// InfluxDB refused the data itself: sending it again will not help.
    Refused { status: u16, text: String },
    /// Unreachable, timed out, overloaded or refused our credentials: retry.
    Failed { reason: String, operator: bool },
}

impl Sink {
    /// Validates `config`, opens (or creates) the backlog, by default
    /// `data_dir/influx-backlog.db`, and counts what waits in it.
    pub async fn open(config: InfluxConfig, data_dir: &Path) -> Result<Self, InfluxError> {
        config.validate()?;
        let path = config.backlog_file(data_dir);
        let backlog_error = |source| InfluxError::Backlog {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| backlog_error(sqlx::Error::Io(e)))?;
        }
        let (backlog, points, messages) = Backlog::open(&path).await.map_err(backlog_error)?;
        let client = influxdb2::ClientBuilder::new(&config.url, &config.org, &config.token)
            .build()
            .map_err(|e| InfluxError::Client(e.to_string()))?;
        let stats = Arc::new(SinkStats::default());
        stats.backlog_points.store(points, Ordering::Relaxed);
        stats.backlog_messages.store(messages, Ordering::Relaxed);
        if messages > 0 {
            tracing::info!(path = %path.display(), points, messages, "InfluxDB backlog from before; resuming");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                path,
                client,
                backlog,
                stats,
                wake: Notify::new(),
            }),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.inner.stats.clone()
    }

    /// The backlog file.
    pub fn backlog_path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends the readings of one message to the backlog (one insert; on
    /// disk when this returns). Without the message's `replay` flag: prefer
    /// [`Sink::enqueue_telemetry`] when the message is at hand.
    pub async fn enqueue(&self, gateway: &str, readings: &[Reading]) -> Result<(), InfluxError> {
        self.append(gateway, readings, false).await
    }

    /// Appends a telemetry message's readings, marking them `replay` when
    /// the gateway sent them from its backlog.
    pub async fn enqueue_telemetry(&self, telemetry: &Telemetry) -> Result<(), InfluxError> {
        self.append(&telemetry.gateway, &telemetry.readings, telemetry.replay)
            .await
    }

    async fn append(
        &self,
        gateway: &str,
        readings: &[Reading],
        replay: bool,
    ) -> Result<(), InfluxError> {
        if readings.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let (lines, points) = line::encode(gateway, readings, replay);
        inner
            .backlog
            .append(points, &lines)
            .await
            .map_err(|source| InfluxError::Backlog {
                path: inner.path.clone(),
                source,
            })?;
        let stats = &inner.stats;
        stats
            .enqueued_points
            .fetch_add(u64::from(points), Ordering::Relaxed);
        stats.backlog_messages.fetch_add(1, Ordering::Relaxed);
        let waiting = stats
            .backlog_points
            .fetch_add(u64::from(points), Ordering::Relaxed)
            + u64::from(points);
        if waiting >= inner.config.batch_max_points as u64 {
            inner.wake.notify_one();
        }
        Ok(())
    }

    /// Messages InfluxDB refused as invalid, set aside: (points, line
    /// protocol, InfluxDB's answer), oldest first.
    pub async fn refused(&self) -> Result<Vec<(u32, String, String)>, InfluxError> {
        self.inner
            .backlog
            .refused()
            .await
            .map_err(|source| InfluxError::Backlog {
                path: self.inner.path.clone(),
                source,
            })
    }

    /// Closes the backlog database (after [`Sink::run`] has returned).
    pub async fn close(&self) {
        self.inner.backlog.close().await;
    }

    /// Sends the backlog to InfluxDB until `shutdown`; see the module doc.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &*self.inner;
        let config = &inner.config;
        let stats = &inner.stats;
        let flush = Duration::from_millis(config.flush_interval_ms);
        let retry_max = Duration::from_millis(config.retry_max_ms);
        let mut retry = FIRST_RETRY.min(retry_max);
        // Failed attempts in a row, while failing.
        let mut failing: Option<u64> = None;
        // Refused messages since the last accepted write.
        let mut refusing = 0u64;
        // After a refused batch: one message at a time up to this row.
        let mut isolate_through: Option<i64> = None;
        let wait = |d: Duration| {
            let stop = shutdown.clone();
            async move {
                tokio::select! {
                    () = stop.cancelled() => false,
                    () = tokio::time::sleep(d) => true,
                }
            }
        };
        loop {
            // Send everything waiting, oldest first.
            while !shutdown.is_cancelled() {
                let max_rows = if isolate_through.is_some() {
                    1
                } else {
                    usize::MAX
                };
                let batch = match inner
                    .backlog
                    .oldest(config.batch_max_points, max_rows)
                    .await
                {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::error!(path = %inner.path.display(), error = %error, "cannot read the InfluxDB backlog");
                        if !wait(retry_max).await {
                            return;
                        }
                        continue;
                    }
                };
                let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                    isolate_through = None;
                    break;
                };
                let (first_id, last_id) = (first.id, last.id);
                let points: u64 = batch.iter().map(|e| u64::from(e.points)).sum();
                let body: String = batch.iter().map(|e| e.lines.as_str()).collect();
                let done_isolating = isolate_through.is_some_and(|through| last_id >= through);
                match inner.write(body).await {
                    Ok(()) => {
                        if let Err(error) = inner.backlog.remove(first_id, last_id).await {
                            // They will be sent again: at least once.
                            tracing::error!(path = %inner.path.display(), error = %error, "cannot delete sent rows from the InfluxDB backlog");
                            if !wait(retry_max).await {
                                return;
                            }
                            continue;
                        }
                        stats.written_points.fetch_add(points, Ordering::Relaxed);
                        stats.sent(&batch);
                        stats.up.store(true, Ordering::Relaxed);
                        if let Some(attempts) = failing.take() {
                            tracing::info!(url = %config.url, failed_attempts = attempts, sent_points = points, still_waiting = stats.backlog_points.load(Ordering::Relaxed), "InfluxDB accepts writes again");
                        }
                        refusing = 0;
                        retry = FIRST_RETRY.min(retry_max);
                        if done_isolating {
                            isolate_through = None;
                        }
                    }
                    Err(WriteError::Refused { status, text }) if batch.len() > 1 => {
                        tracing::warn!(status, error = %text, messages = batch.len(), "InfluxDB refused a batch; resending it one message at a time");
                        isolate_through = Some(last_id);
                    }
                    Err(WriteError::Refused { status, text }) => {
                        let error = format!("HTTP {status}: {text}");
                        let now_ms = riser_contract::unix_ms(time::OffsetDateTime::now_utc());
                        if let Err(e) = inner.backlog.refuse(&batch[0], &error, now_ms).await {
                            tracing::error!(path = %inner.path.display(), error = %e, "cannot set a refused message aside");
                            if !wait(retry_max).await {
                                return;
                            }
                            continue;
                        }
                        if refusing == 0 {
                            tracing::error!(status, error = %text, points, path = %inner.path.display(), "InfluxDB refused a message as invalid; set aside in the backlog's `refused` table");
                        } else {
                            tracing::debug!(status, error = %text, points, "InfluxDB refused another message");
                        }
                        refusing += 1;
                        stats.refused_points.fetch_add(points, Ordering::Relaxed);
                        stats.sent(&batch);
                        if done_isolating {
                            isolate_through = None;
                        }
                    }
                    Err(WriteError::Failed { reason, operator }) => {
                        stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        stats.up.store(false, Ordering::Relaxed);
                        let attempts = failing.get_or_insert(0);
                        if *attempts == 0 {
                            let backlog_points = stats.backlog_points.load(Ordering::Relaxed);
                            if operator {
                                tracing::error!(url = %config.url, org = %config.org, bucket = %config.bucket, error = %reason, backlog_points, "InfluxDB refuses the token, org or bucket; keeping the backlog and retrying");
                            } else {
                                tracing::warn!(url = %config.url, error = %reason, backlog_points, "InfluxDB write failed; keeping the backlog and retrying");
                            }
                        } else {
                            tracing::debug!(url = %config.url, error = %reason, attempt = *attempts + 1, "InfluxDB write failed again");
                        }
                        *attempts += 1;
                        if !wait(retry).await {
                            return;
                        }
                        retry = (retry * 2).min(retry_max);
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(flush) => {}
            }
        }
    }
}

impl Inner {
    /// One write request of line protocol with millisecond timestamps.
    async fn write(&self, body: String) -> Result<(), WriteError> {
        let config = &self.config;
        let request = self.client.write_line_protocol_with_precision(
            &config.org,
            &config.bucket,
            body,
            TimestampPrecision::Milliseconds,
        );
        let timeout = Duration::from_millis(config.request_timeout_ms);
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(RequestError::Http { status, text })) => match status.as_u16() {
                status @ (400 | 413 | 422) => Err(WriteError::Refused { status, text }),
                status @ (401 | 403 | 404) => Err(WriteError::Failed {
                    reason: format!("HTTP {status}: {text}"),
                    operator: true,
                }),
                status => Err(WriteError::Failed {
                    reason: format!("HTTP {status}: {text}"),
                    operator: false,
                }),
            },
            Ok(Err(error)) => Err(WriteError::Failed {
                reason: error.to_string(),
                operator: false,
            }),
            Err(_) => Err(WriteError::Failed {
                reason: format!("no answer within {} ms", config.request_timeout_ms),
                operator: false,
            }),
        }
    }
}
