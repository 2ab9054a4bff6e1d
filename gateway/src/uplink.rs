//! The MQTT uplink: one task owns the connection, sends what the outbox
//! holds (priority order, QoS 1) and deletes each message only after its
//! PUBACK. After any connection error it starts a fresh session and resends
//! everything still in the outbox; the cloud drops the duplicates by
//! sequence number.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use riser_contract::{Status, Stream, VERSION};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::outbox::{Outbox, OutboxError};

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
    shutdown: CancellationToken,
) {
    let first_delay = Duration::from_millis(config.reconnect_delay_ms);
    let max_delay = Duration::from_millis(config.reconnect_max_delay_ms).max(first_delay);
    let mut delay = first_delay;
    let mut failures = 0u32;
    loop {
        let (client, eventloop) = AsyncClient::new(options(&gateway_id, &config), 256);
        let mut session = Session::new(&gateway_id, &config, client, eventloop, &outbox);
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

fn status(gateway_id: &str, online: bool, ts: Option<OffsetDateTime>) -> Vec<u8> {
    riser_contract::encode(&Status {
        v: VERSION,
        gateway: gateway_id.to_owned(),
        online,
        ts,
        software: ts.map(|_| concat!("riser-gateway ", env!("CARGO_PKG_VERSION")).to_owned()),
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
            status(gateway_id, false, None),
            QoS::AtLeastOnce,
            true,
        ));
    if let (Some(user), Some(pass)) = (&config.username, &config.password) {
        options.set_credentials(user, pass);
    }
    options
}

struct Session<'a> {
    gateway_id: &'a str,
    client: AsyncClient,
    eventloop: EventLoop,
    outbox: &'a Outbox,
    max_inflight: usize,
    /// Publishes handed to the client, waiting for their packet id, in order:
    /// `Some(outbox id)`, or `None` for a status message not in the outbox.
    queued: VecDeque<Option<i64>>,
    /// Outbox ids sent and not yet acknowledged.
    in_flight: HashSet<i64>,
    by_packet_id: HashMap<u16, i64>,
    maybe_more: bool,
    max_packet_bytes: usize,
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
    ) -> Self {
        Self {
            gateway_id,
            client,
            eventloop,
            outbox,
            // One slot stays free for the status message.
            max_inflight: usize::from(config.max_inflight) - 1,
            queued: VecDeque::new(),
            in_flight: HashSet::new(),
            by_packet_id: HashMap::new(),
            maybe_more: true,
            max_packet_bytes: config.max_packet_bytes,
            acknowledged: 0,
        }
    }

    async fn run(&mut self, shutdown: &CancellationToken) -> Result<(), UplinkError> {
        if !self.connect(shutdown).await? {
            return Ok(());
        }
        self.client
            .publish(
                riser_contract::topic(self.gateway_id, Stream::Status),
                QoS::AtLeastOnce,
                true,
                status(self.gateway_id, true, Some(OffsetDateTime::now_utc())),
            )
            .await?;
        self.queued.push_back(None);
        let depth = self.outbox.depth().await?;
        tracing::info!(gateway_id = %self.gateway_id, outbox_depth = depth, "uplink connected");
        loop {
            self.fill().await?;
            let room = self.in_flight.len() < self.max_inflight;
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.goodbye().await;
                    return Ok(());
                }
                event = self.eventloop.poll() => self.handle(event?).await?,
                () = self.outbox.appended(), if room => self.maybe_more = true,
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

    /// Hands the client as many outbox messages as the in-flight window allows.
    async fn fill(&mut self) -> Result<(), UplinkError> {
        let room = self.max_inflight.saturating_sub(self.in_flight.len());
        if !self.maybe_more || room == 0 {
            return Ok(());
        }
        let entries = self.outbox.next(room, &self.in_flight).await?;
        self.maybe_more = entries.len() == room;
        for entry in entries {
            let topic = riser_contract::topic(self.gateway_id, entry.stream);
            // Fixed header, topic and packet id come on top of the payload.
            if entry.payload.len() + topic.len() + 16 > self.max_packet_bytes {
                tracing::error!(gateway_id = %self.gateway_id, stream = %entry.stream, seq = entry.seq, bytes = entry.payload.len(), limit = self.max_packet_bytes, "message larger than the MQTT packet limit; moved to dead_letter, not sent");
                self.outbox
                    .dead_letter(entry.id, "larger than mqtt.max_packet_bytes")
                    .await?;
                self.maybe_more = true;
                continue;
            }
            self.client
                .publish(topic, QoS::AtLeastOnce, false, entry.payload)
                .await?;
            self.queued.push_back(Some(entry.id));
            self.in_flight.insert(entry.id);
        }
        Ok(())
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
                    self.outbox.acknowledge(id).await?;
                    self.acknowledged += 1;
                    self.in_flight.remove(&id);
                    self.maybe_more = true;
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
        let offline = status(self.gateway_id, false, Some(OffsetDateTime::now_utc()));
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
