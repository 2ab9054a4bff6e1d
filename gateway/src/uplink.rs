//! The MQTT uplink: one task owns the connection, sends what the outbox
//! holds (QoS 1) and deletes each message only after its PUBACK. Order:
//! events first; then telemetry read since this session connected (live);
//! then the backlog, flagged `replay`. After any connection error it starts
//! a fresh session and resends everything still unacknowledged; the cloud
//! drops duplicates by sequence number. Every `health_interval_secs` it
//! publishes the gateway's health on the retained status topic.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use riser_contract::{Health, Message, Status, Stream, VERSION};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::metrics::Metrics;
use crate::outbox::{Entry, Outbox, OutboxError};

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("MQTT connection: {0}")]
    Connection(#[from] ConnectionError),
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Runs until `shutdown`, reconnecting as needed: the wait doubles from
/// `reconnect_delay_ms` up to `reconnect_max_delay_ms` while the broker
/// stays away, and starts over once a session was established.
pub async fn run(
    gateway_id: String,
    config: MqttConfig,
    outbox: Outbox,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let first_delay = Duration::from_millis(config.reconnect_delay_ms);
    let max_delay = Duration::from_millis(config.reconnect_max_delay_ms).max(first_delay);
    let mut delay = first_delay;
    let mut failures = 0u32;
    loop {
        let (client, eventloop) = AsyncClient::new(options(&gateway_id, &config), 256);
        let mut session = Session::new(&gateway_id, &config, client, eventloop, &outbox, &metrics);
        let result = session.run(&shutdown).await;
        // Only a session that delivered something ends an outage: one that
        // connects and fails at once keeps backing off, quietly.
        if session.acknowledged > 0 {
            delay = first_delay;
            failures = 0;
        }
        match result {
            Ok(()) => return,
            Err(error) if failures == 0 => {
                let depth = outbox.depth().await.unwrap_or(0);
                tracing::warn!(gateway_id = %gateway_id, error = %error, outbox_depth = depth, "uplink lost; buffering and reconnecting");
            }
            Err(error) => {
                tracing::debug!(gateway_id = %gateway_id, error = %error, attempt = failures, "uplink still down");
            }
        }
        failures += 1;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(max_delay);
    }
}

fn status(
    gateway_id: &str,
    online: bool,
    ts: Option<OffsetDateTime>,
    health: Option<Health>,
) -> Vec<u8> {
    riser_contract::encode(&Status {
        v: VERSION,
        gateway: gateway_id.to_owned(),
        online,
        ts,
        software: ts.map(|_| concat!("riser-gateway ", env!("CARGO_PKG_VERSION")).to_owned()),
        health,
    })
}

fn options(gateway_id: &str, config: &MqttConfig) -> MqttOptions {
    let mut options = MqttOptions::new(gateway_id, &config.host, config.port);
    options
        .set_keep_alive(Duration::from_secs(config.keep_alive_secs.max(5)))
        // The outbox, not the broker session, is the memory of what is unsent.
        .set_clean_session(true)
        .set_inflight(config.max_inflight)
        .set_max_packet_size(config.max_packet_bytes, config.max_packet_bytes)
        .set_last_will(LastWill::new(
            riser_contract::topic(gateway_id, Stream::Status),
            status(gateway_id, false, None, None),
            QoS::AtLeastOnce,
            true,
        ));
    if let (Some(user), Some(pass)) = (&config.username, &config.password) {
        options.set_credentials(user, pass);
    }
    options
}

/// Acknowledged ids deleted together, at most this many per commit.
const ACK_BATCH: usize = 256;

struct Session<'a> {
    gateway_id: &'a str,
    client: AsyncClient,
    eventloop: EventLoop,
    outbox: &'a Outbox,
    metrics: &'a Metrics,
    max_inflight: usize,
    max_packet_bytes: usize,
    max_readings: u64,
    batch_delay: Duration,
    health_interval: Duration,
    /// Publishes handed to the client, waiting for their packet id, in order:
    /// `Some(outbox id)`, or `None` for a status message not in the outbox.
    queued: VecDeque<Option<i64>>,
    /// Outbox ids sent and not yet deleted.
    in_flight: HashSet<i64>,
    by_packet_id: HashMap<u16, i64>,
    /// Acknowledged, to delete with the next commit.
    acked: Vec<i64>,
    maybe_more: bool,
    /// Staged rows from this id on were written during this session (live).
    live_from: i64,
    /// Outbox messages below this id were sealed before this session:
    /// resent, flagged `replay`.
    replay_below: i64,
    /// When live readings began waiting for a batch.
    live_waiting: Option<tokio::time::Instant>,
    /// Messages the broker acknowledged in this session.
    acknowledged: u64,
}

impl<'a> Session<'a> {
    fn new(
        gateway_id: &'a str,
        config: &MqttConfig,
        client: AsyncClient,
        eventloop: EventLoop,
        outbox: &'a Outbox,
        metrics: &'a Metrics,
    ) -> Self {
        Self {
            gateway_id,
            client,
            eventloop,
            outbox,
            metrics,
            // One slot stays free for the status message.
            max_inflight: usize::from(config.max_inflight) - 1,
            max_packet_bytes: config.max_packet_bytes,
            max_readings: 0,
            batch_delay: Duration::from_millis(config.batch_delay_ms),
            health_interval: Duration::from_secs(config.health_interval_secs.max(1)),
            queued: VecDeque::new(),
            in_flight: HashSet::new(),
            by_packet_id: HashMap::new(),
            acked: Vec::new(),
            maybe_more: true,
            live_from: 0,
            replay_below: 0,
            live_waiting: None,
            acknowledged: 0,
        }
    }

    async fn run(&mut self, shutdown: &CancellationToken) -> Result<(), UplinkError> {
        if !self.connect(shutdown).await? {
            return Ok(());
        }
        // What was written before this moment is backlog.
        self.live_from = self.outbox.staged_mark().await?;
        self.replay_below = self.outbox.outbox_mark().await?;
        self.max_readings = self.outbox.max_readings_per_message() as u64;
        self.publish_status().await?;
        let depth = self.outbox.depth().await?;
        tracing::info!(gateway_id = %self.gateway_id, outbox_depth = depth, "uplink connected");
        let mut health = tokio::time::interval(self.health_interval);
        health.reset();
        loop {
            self.fill().await?;
            let room = self.in_flight.len() < self.max_inflight;
            let batch_due = self.live_waiting.map(|since| since + self.batch_delay);
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = self.flush_acks().await;
                    self.goodbye().await;
                    return Ok(());
                }
                event = self.eventloop.poll() => self.handle(event?).await?,
                () = self.outbox.appended(), if room => {
                    self.maybe_more = true;
                    self.live_waiting.get_or_insert_with(tokio::time::Instant::now);
                }
                () = sleep_until(batch_due), if room && batch_due.is_some() => {
                    self.maybe_more = true;
                }
                _ = health.tick() => self.publish_status().await?,
            }
        }
    }

    /// Waits for the CONNACK; `false` if shut down first.
    async fn connect(&mut self, shutdown: &CancellationToken) -> Result<bool, UplinkError> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(false),
                event = self.eventloop.poll() => {
                    if let Event::Incoming(Packet::ConnAck(_)) = event? {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// The retained status with the current health.
    async fn publish_status(&mut self) -> Result<(), UplinkError> {
        let (metrics, outbox) = (self.metrics, self.outbox);
        let health = metrics.health(outbox).await;
        self.client
            .publish(
                riser_contract::topic(self.gateway_id, Stream::Status),
                QoS::AtLeastOnce,
                true,
                status(
                    self.gateway_id,
                    true,
                    Some(OffsetDateTime::now_utc()),
                    Some(health),
                ),
            )
            .await?;
        self.queued.push_back(None);
        Ok(())
    }

    async fn flush_acks(&mut self) -> Result<(), UplinkError> {
        if self.acked.is_empty() {
            return Ok(());
        }
        self.outbox.acknowledge(&self.acked).await?;
        for id in self.acked.drain(..) {
            self.in_flight.remove(&id);
        }
        Ok(())
    }

    /// Whether live readings should be sealed now rather than wait to fill
    /// a bigger message.
    async fn live_due(&mut self) -> Result<bool, UplinkError> {
        if self.batch_delay.is_zero()
            || self
                .live_waiting
                .is_some_and(|since| since.elapsed() >= self.batch_delay)
        {
            return Ok(true);
        }
        let (outbox, live_from) = (self.outbox, self.live_from);
        Ok(outbox.live_readings(live_from).await? >= self.max_readings)
    }

    /// Hands the client as many messages as the in-flight window allows,
    /// sealing staged readings into messages when the sealed ones run out.
    async fn fill(&mut self) -> Result<(), UplinkError> {
        self.flush_acks().await?;
        let room = self.max_inflight.saturating_sub(self.in_flight.len());
        if !self.maybe_more || room == 0 {
            return Ok(());
        }
        let mut entries = self.outbox.next(room, &self.in_flight).await?;
        if entries.len() < room {
            let include_live = self.live_due().await?;
            let sealed = self
                .outbox
                .seal(self.live_from, include_live, room - entries.len())
                .await?;
            if include_live && !sealed.replay {
                self.live_waiting = None;
            }
            if sealed.messages > 0 {
                entries = self.outbox.next(room, &self.in_flight).await?;
            }
        }
        self.maybe_more = entries.len() == room;
        for entry in entries {
            let topic = riser_contract::topic(self.gateway_id, entry.stream);
            let payload = if entry.id < self.replay_below {
                self.flagged_replay(&topic, &entry)
            } else {
                entry.payload
            };
            // Fixed header, topic and packet id come on top of the payload.
            if payload.len() + topic.len() + 16 > self.max_packet_bytes {
                tracing::error!(gateway_id = %self.gateway_id, stream = %entry.stream, seq = entry.seq, bytes = payload.len(), limit = self.max_packet_bytes, "message larger than the MQTT packet limit; moved to dead_letter, not sent");
                self.outbox
                    .dead_letter(entry.id, "larger than mqtt.max_packet_bytes")
                    .await?;
                self.maybe_more = true;
                continue;
            }
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await?;
            self.queued.push_back(Some(entry.id));
            self.in_flight.insert(entry.id);
        }
        Ok(())
    }

    /// A message sealed before this session, re-encoded with `replay` set
    /// (same sequence number). Left as it was if it cannot be read.
    fn flagged_replay(&self, topic: &str, entry: &Entry) -> Vec<u8> {
        match riser_contract::decode(topic, &entry.payload) {
            Ok(Message::Telemetry(mut t)) if !t.replay => {
                t.replay = true;
                self.outbox.telemetry_payload(&t)
            }
            Ok(Message::Events(mut e)) if !e.replay => {
                e.replay = true;
                riser_contract::encode(&e)
            }
            _ => entry.payload.clone(),
        }
    }

    async fn handle(&mut self, event: Event) -> Result<(), UplinkError> {
        match event {
            // The event loop takes requests in the order they were handed to
            // the client, so the n-th outgoing publish is the n-th queued one.
            Event::Outgoing(Outgoing::Publish(packet_id)) => {
                if let Some(Some(id)) = self.queued.pop_front() {
                    self.by_packet_id.insert(packet_id, id);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(id) = self.by_packet_id.remove(&ack.pkid) {
                    self.acked.push(id);
                    self.acknowledged += 1;
                    self.maybe_more = true;
                    if self.acked.len() >= ACK_BATCH {
                        self.flush_acks().await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Clean shutdown: say offline (the last-will only covers a crash) and
    /// disconnect, without waiting long for a broker that may be gone.
    async fn goodbye(&mut self) {
        let topic = riser_contract::topic(self.gateway_id, Stream::Status);
        let offline = status(
            self.gateway_id,
            false,
            Some(OffsetDateTime::now_utc()),
            None,
        );
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, offline)
            .is_err()
            || self.client.try_disconnect().is_err()
        {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
