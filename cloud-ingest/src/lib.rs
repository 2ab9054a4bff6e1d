//! Riser cloud-ingest: consumes gateway messages from the broker, stores
//! them, judges every building's fire water against the fire code and
//! serves the API and dashboard.
//!
//! Data path: [`consume`] (events and status on one connection, telemetry on
//! another) → [`store`] (dedupe, gaps, history) → [`rules`] (verdicts) →
//! [`api`].

pub mod api;
pub mod auth;
pub mod broker;
pub mod config;
pub mod consume;
pub mod hazards;
pub mod influx;
pub mod metrics;
pub mod notify;
pub mod registry;
pub mod rules;
pub mod stats;
pub mod store;
pub mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use registry::Registry;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedded MQTT broker does not accept connections on {addr}: {source}")]
    Broker {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Influx(#[from] influx::InfluxError),
    #[error("alert channels: {0}")]
    Notify(String),
}

/// Shared state of the running service.
pub struct App {
    pub registry: Registry,
    pub store: Store,
    /// The InfluxDB sink, when configured.
    pub influx: Option<influx::Sink>,
    pub metrics: Metrics,
    pub rules: rules::Settings,
    pub hazards: hazards::HazardsConfig,
    /// Acknowledge links in alerts, when `[notify]` configures them.
    pub links: Option<notify::link::Links>,
    /// Woken when hazard transitions commit, so the notifier plans and
    /// sends at once instead of at its next poll.
    pub alerts_due: tokio::sync::Notify,
    /// Sessions, tokens, anonymous access (`[auth]`).
    pub auth: auth::AuthConfig,
    /// Failed sign-ins, per user name and per address.
    pub logins: auth::LoginLimiter,
    /// Verdict changes as they commit, for the dashboard's live updates
    /// (`GET /api/events`).
    pub events: tokio::sync::broadcast::Sender<BuildingEvent>,
    /// The parties' contacts (`[[notify.party]]`): their phone numbers and
    /// e-mail addresses are shown on the building page.
    pub contacts: notify::route::Contacts,
}

/// A building's verdict changed (committed).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BuildingEvent {
    pub id: String,
    pub status: rules::Status,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Verdict changes kept for a slow listener before it is told to reload.
const EVENTS_BUFFER: usize = 1024;

impl App {
    /// `registry` and `store` with every other part at its default: no
    /// InfluxDB, default rules, hazards and auth, no alert links.
    pub fn new(registry: Registry, store: Store) -> Self {
        Self {
            registry,
            store,
            influx: None,
            metrics: Metrics::default(),
            rules: rules::Settings::default(),
            hazards: hazards::HazardsConfig::default(),
            links: None,
            alerts_due: Default::default(),
            auth: auth::AuthConfig::default(),
            logins: Default::default(),
            events: tokio::sync::broadcast::channel(EVENTS_BUFFER).0,
            contacts: Default::default(),
        }
    }
}

/// Most buildings judged in one transaction: on SQLite a judging holds the
/// writer turn, which ingest waits for.
const JUDGE_CHUNK: usize = 200;

/// Re-judges the buildings read by `gateways` (every building if `None`):
/// each under its row lock, from the latest values read after taking it,
/// saving verdict, rule state and hazard changes in one commit per chunk
/// (see [`store::Judging`]). Returns the buildings whose verdict changed
/// (in commits made, if a later chunk fails).
pub async fn judge<'a>(
    app: &'a App,
    gateways: Option<&[&str]>,
    now: OffsetDateTime,
) -> Result<Vec<&'a registry::Building>, StoreError> {
    let mut buildings: Vec<&registry::Building> = match gateways {
        Some(gateways) => app
            .registry
            .buildings()
            .iter()
            .filter(|b| gateways.contains(&b.gateway.as_str()))
            .collect(),
        None => app.registry.buildings().iter().collect(),
    };
    // One lock order for every judge (no deadlock between nodes).
    buildings.sort_by(|a, b| a.id.cmp(&b.id));
    buildings.dedup_by(|a, b| a.id == b.id);
    let mut changed = Vec::new();
    for chunk in buildings.chunks(JUDGE_CHUNK) {
        let mut changed_here = Vec::new();
        let mut transitions = 0;
        let mut judging = app.store.begin_judging().await?;
        let mut cache: HashMap<&str, (HashMap<String, rules::PointValue>, rules::Link)> =
            HashMap::new();
        for building in chunk {
            let locked = judging.lock(&building.id).await?;
            let gw = building.gateway.as_str();
            if !cache.contains_key(gw) {
                let points = judging
                    .latest(gw)
                    .await?
                    .into_iter()
                    .map(|l| (l.point, l.value))
                    .collect();
                let link = judging.link(gw).await?;
                cache.insert(gw, (points, link));
            }
            let (points, link) = &cache[gw];
            let mut state = locked.state.clone();
            state.set_maintenance(judging.maintenance_until(&building.id, now).await?);
            let verdict = rules::evaluate(building, points, *link, now, &app.rules, &mut state);
            if judging
                .save(&building.id, &locked, &verdict, &state, now)
                .await?
            {
                changed_here.push((*building, verdict.status));
            }
            // A building whose gateway was never heard from is not
            // monitored yet (being installed): its verdict says unknown,
            // but there is no hazard item to page anyone about.
            if link.last_seen.is_some() || link.online.is_some() {
                transitions +=
                    hazards::reconcile(judging.connection(), building, &verdict, now, &app.hazards)
                        .await?;
            }
        }
        judging.commit().await?;
        for (building, status) in changed_here {
            // Nobody listening is fine.
            let _ = app.events.send(BuildingEvent {
                id: building.id.clone(),
                status,
                updated_at: now,
            });
            changed.push(building);
        }
        if transitions > 0 {
            app.alerts_due.notify_one();
        }
    }
    Ok(changed)
}

/// Two 40 m residential buildings (B1 named with markup, B2 read by `gw-B2`)
/// in a fresh store in a temp dir.
#[cfg(test)]
pub(crate) async fn test_app() -> (tempfile::TempDir, Arc<App>) {
    const CSV: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m
B1,<script>alert(1)</script>,梁平区,梁山街道,西平社区,residential,no,40,13,8,2.5,0.2
B2,二号楼,梁平区,梁山街道,西平社区,residential,no,40,13,8,2.5,0.2
";
    let dir = tempfile::tempdir().unwrap();
    let store = store::test_store(dir.path()).await;
    let app = Arc::new(App {
        // Conditions count at once: these tests judge single readings.
        rules: rules::Settings {
            tuning: rules::Tuning::immediate(),
            ..rules::Settings::default()
        },
        // These tests are about other things than signing in.
        auth: auth::AuthConfig {
            anonymous: Some(auth::Role::Admin),
            ..auth::AuthConfig::default()
        },
        ..App::new(
            Registry::new(registry::parse_csv(CSV).unwrap()).unwrap(),
            store,
        )
    });
    (dir, app)
}

/// A telemetry message of good readings, all taken `at`.
#[cfg(test)]
pub(crate) fn telemetry(
    gateway: &str,
    seq: u64,
    at: OffsetDateTime,
    values: &[(&str, f64)],
) -> riser_contract::Message {
    use riser_contract::{Message, Reading, Telemetry};
    let readings = values
        .iter()
        .map(|(point, value)| Reading::good(point, at, *value))
        .collect();
    Message::Telemetry(Telemetry::new(gateway, seq, readings))
}

/// `gateway` heard from at `at` (one reading of a point no rule reads):
/// its buildings are monitored from then on, and the points they expect
/// have no data.
#[cfg(test)]
pub(crate) async fn heard_from(app: &App, gateway: &str, at: OffsetDateTime) {
    let m = telemetry(gateway, 1, at, &[("cabinet.temperature", 21.0)]);
    app.store.ingest(&m, at).await.unwrap();
}

/// The store `config` names (PostgreSQL at `database_url`, else SQLite in
/// `data_dir`), migrated.
pub async fn open_store(config: &Config) -> Result<Store, IngestError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| IngestError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(match &config.database_url {
        Some(url) => Store::connect(url).await?,
        None => Store::open(&config.data_dir.join("ingest.db")).await?,
    })
}

/// A running cloud-ingest.
pub struct Ingest {
    pub app: Arc<App>,
    /// Where the API listens (the port is resolved if 0 was configured).
    pub http_addr: SocketAddr,
    /// The broker this node consumes from.
    pub broker_addr: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Opens the store, starts the embedded broker if no broker is
    /// configured, the two consumers (events and status; telemetry), the
    /// periodic judge and the HTTP server.
    pub async fn start(
        config: Config,
        registry: Registry,
        shutdown: CancellationToken,
    ) -> Result<Self, IngestError> {
        let store = open_store(&config).await?;
        let influx = match config.influx.clone() {
            Some(influx) => Some(influx::Sink::open(influx, &config.data_dir).await?),
            None => None,
        };
        let app = Arc::new(App {
            influx: influx.clone(),
            rules: rules::Settings {
                point_stale_after: time::Duration::seconds(
                    config.rules.point_stale_after_secs as i64,
                ),
                gateway_silent_after: time::Duration::seconds(
                    config.rules.gateway_silent_after_secs as i64,
                ),
                tuning: config.rules.tuning.clone(),
            },
            hazards: config.hazards.clone(),
            links: config.notify.as_ref().and_then(notify::NotifyConfig::links),
            auth: config.auth.clone(),
            contacts: config
                .notify
                .as_ref()
                .map(notify::NotifyConfig::contacts)
                .unwrap_or_default(),
            ..App::new(registry, store)
        });
        if let Some(role) = config.auth.anonymous {
            tracing::warn!(
                role = role.as_str(),
                "requests without a login act as {role}: `auth.anonymous` is set"
            );
        }
        judge(&app, None, OffsetDateTime::now_utc()).await?;

        let (host, port) = match &config.mqtt.broker {
            Some(broker) => {
                let (h, p) = broker.rsplit_once(':').unwrap_or((broker, "1883"));
                (h.to_owned(), p.parse().unwrap_or(1883))
            }
            None => {
                broker::start(config.mqtt.embedded_listen)
                    .await
                    .map_err(|source| IngestError::Broker {
                        addr: config.mqtt.embedded_listen,
                        source,
                    })?;
                let l = config.mqtt.embedded_listen;
                (l.ip().to_string(), l.port())
            }
        };
        let broker_addr = format!("{host}:{port}");
        let connection = consume::Connection {
            host,
            port,
            client_id: config.mqtt.client_id.clone(),
            shared_group: config.mqtt.shared_group.clone(),
            parallel_batches: config.mqtt.parallel_batches,
            credentials: config
                .mqtt
                .username
                .clone()
                .zip(config.mqtt.password.clone()),
        };
        let mut tasks = vec![tokio::spawn(consume::run(
            app.clone(),
            connection,
            shutdown.clone(),
        ))];
        if let Some(sink) = influx {
            tasks.push(tokio::spawn(sink.run(shutdown.clone())));
        }
        if let Some(notify) = config.notify.clone() {
            let channels = notify::channel::Channels::new(&notify.channels)
                .map_err(|e| IngestError::Notify(e.to_string()))?;
            tasks.push(tokio::spawn(notify::run(
                app.clone(),
                notify,
                channels,
                shutdown.clone(),
            )));
        }
        // Raw readings, minutes and remembered messages past their days.
        tasks.push(tokio::spawn(store::prune_periodically(
            app.store.clone(),
            config.history.clone(),
            shutdown.clone(),
        )));

        let periodic = app.clone();
        let every = Duration::from_secs(config.rules.evaluate_every_secs);
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let now = OffsetDateTime::now_utc();
                if let Err(error) = judge(&periodic, None, now).await {
                    tracing::error!(error = %error, "periodic judging failed");
                }
                match hazards::escalate(&periodic.store, now, &periodic.hazards).await {
                    Ok(0) => {}
                    Ok(_) => periodic.alerts_due.notify_one(),
                    Err(error) => tracing::error!(error = %error, "hazard escalation failed"),
                }
            }
        }));

        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| IngestError::Listen {
                addr: config.http.listen,
                source,
            })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| IngestError::Listen {
                addr: config.http.listen,
                source,
            })?;
        let router = api::router(app.clone());
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            // The client's address: sign-in failures are limited per address.
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let serve =
                axum::serve(listener, service).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(error) = serve.await {
                tracing::error!(error = %error, "HTTP server failed");
            }
        }));
        tracing::info!(http = %http_addr, broker = %broker_addr, buildings = app.registry.buildings().len(), "cloud-ingest started");
        Ok(Self {
            app,
            http_addr,
            broker_addr,
            tasks,
        })
    }

    /// Waits for every task after shutdown.
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        self.app.store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// `app`'s registry and store in a new `App` with the default
    /// durations: nothing shared in memory, as after a restart or on
    /// another node.
    fn node(app: &App) -> App {
        App::new(app.registry.clone(), app.store.clone())
    }

    async fn low_tank(app: &App, seq: u64, at: OffsetDateTime) {
        let m = crate::telemetry(
            "gw-B2",
            seq,
            at,
            &[("tank.level", 0.5), ("riser.pressure", 0.3)],
        );
        app.store.ingest(&m, at).await.unwrap();
    }

    #[tokio::test]
    async fn a_condition_keeps_counting_its_duration_across_a_restart_and_across_nodes() {
        let (_dir, app) = test_app().await;
        let t0 = datetime!(2026-11-23 08:00 UTC);
        let first = node(&app);
        low_tank(&first, 1, t0).await;
        judge(&first, Some(&["gw-B2"]), t0).await.unwrap();
        let verdict = &app.store.verdicts().await.unwrap()["B2"];
        assert_eq!(verdict.status, rules::Status::Ok, "pending: {verdict:?}");

        // Another process judges next, past the 30 s the tank must stay low.
        let second = node(&app);
        let later = t0 + time::Duration::seconds(40);
        low_tank(&second, 2, later).await;
        judge(&second, Some(&["gw-B2"]), later).await.unwrap();
        let verdict = &app.store.verdicts().await.unwrap()["B2"];
        assert_eq!(verdict.status, rules::Status::Failing);
        assert_eq!(
            verdict.reasons[0].since,
            Some(t0),
            "the duration counted from the first node's reading"
        );
    }
}
