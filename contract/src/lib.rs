//! The wire contract between a Riser gateway and cloud-ingest.
//!
//! Every message is JSON, carries the contract version `v`, and is published
//! under one prefix per gateway:
//!
//! ```text
//! riser/v1/{gateway_id}/telemetry   QoS 1  readings of one poll cycle
//! riser/v1/{gateway_id}/events      QoS 1  state changes (alarms, faults, quality)
//! riser/v1/{gateway_id}/status      QoS 1, retained; also the last-will
//! ```
//!
//! Telemetry and events carry a per-gateway, per-stream sequence number that
//! starts at 1 and grows by one per message, so the cloud can drop duplicates
//! and see gaps. Telemetry travels in a compact form ([`compact`]); any
//! payload may be zlib-compressed ([`compress`]). See `contract/README.md`
//! for example payloads.

mod compact;

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use compact::{from_unix_ms, unix_ms};

/// The contract version every message carries in `v`.
pub const VERSION: u16 = 1;

/// The root of every Riser topic; the version is part of it.
pub const TOPIC_ROOT: &str = "riser/v1";

/// Longest accepted gateway id.
pub const MAX_GATEWAY_ID_LEN: usize = 64;

/// A stream of messages from one gateway; each is one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Telemetry,
    Events,
    Status,
}

impl Stream {
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::Telemetry => "telemetry",
            Stream::Events => "events",
            Stream::Status => "status",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "telemetry" => Some(Stream::Telemetry),
            "events" => Some(Stream::Events),
            "status" => Some(Stream::Status),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a topic or payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("topic `{0}` is not under `{TOPIC_ROOT}/<gateway>/<stream>`")]
    Topic(String),
    #[error("gateway id `{0}` is not 1-64 characters of [A-Za-z0-9_-]")]
    GatewayId(String),
    #[error("payload is not valid JSON for the {stream} stream: {source}")]
    Json {
        stream: Stream,
        #[source]
        source: serde_json::Error,
    },
    #[error("contract version {0} is not supported (this build speaks {VERSION})")]
    Version(u16),
    #[error("payload names gateway `{payload}` but was published under `{topic}`")]
    GatewayMismatch { topic: String, payload: String },
    #[error("sequence number 0 is not allowed; sequences start at 1")]
    ZeroSequence,
    #[error("reading of `{0}` has a value that is not a finite number")]
    NonFinite(String),
    #[error("message has nothing in it")]
    Empty,
    #[error("compressed payload is not valid zlib: {0}")]
    Inflate(std::io::Error),
    #[error("compressed payload inflates beyond {MAX_INFLATED_BYTES} bytes")]
    TooLarge,
}

/// Largest payload accepted after inflating a compressed one.
pub const MAX_INFLATED_BYTES: u64 = 16 * 1024 * 1024;

/// Compresses an encoded payload (zlib). Receivers tell a compressed payload
/// by its first byte: JSON starts with `{`, zlib with `0x78`.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(payload.len() / 4 + 16),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    encoder.write_all(payload).expect("write to Vec");
    encoder.finish().expect("write to Vec")
}

/// The JSON of a payload, inflating it if it is compressed.
fn inflate(payload: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, ContractError> {
    if payload.first() != Some(&0x78) {
        return Ok(std::borrow::Cow::Borrowed(payload));
    }
    let mut out = Vec::with_capacity(payload.len() * 4);
    flate2::read::ZlibDecoder::new(payload)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(ContractError::Inflate)?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err(ContractError::TooLarge);
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Checks a gateway id: 1-64 characters of `[A-Za-z0-9_-]`, so it can never
/// contain MQTT wildcards or separators.
pub fn validate_gateway_id(id: &str) -> Result<(), ContractError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_GATEWAY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ContractError::GatewayId(id.to_owned()))
    }
}

/// The topic of one gateway's stream.
pub fn topic(gateway: &str, stream: Stream) -> String {
    format!("{TOPIC_ROOT}/{gateway}/{}", stream.as_str())
}

/// The subscription filter for one stream of every gateway.
pub fn filter(stream: Stream) -> String {
    format!("{TOPIC_ROOT}/+/{}", stream.as_str())
}

/// Splits a topic into gateway id and stream.
pub fn parse_topic(topic: &str) -> Result<(&str, Stream), ContractError> {
    let rest = topic
        .strip_prefix(TOPIC_ROOT)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| ContractError::Topic(topic.to_owned()))?;
    let (gateway, stream) = rest
        .split_once('/')
        .ok_or_else(|| ContractError::Topic(topic.to_owned()))?;
    let stream = Stream::parse(stream).ok_or_else(|| ContractError::Topic(topic.to_owned()))?;
    validate_gateway_id(gateway)?;
    Ok((gateway, stream))
}

/// How far a reading can be trusted, decided at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// The device answered with a value.
    Good,
    /// The device could not be reached (timeout, connection refused, I/O).
    Unreachable,
    /// The device answered with a Modbus exception.
    Exception,
    /// The value is outside what the transmitter can measure.
    SensorFault,
    /// The value has not changed for longer than configured.
    Stale,
}

impl Quality {
    pub const fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Unreachable => "unreachable",
            Quality::Exception => "exception",
            Quality::SensorFault => "sensor_fault",
            Quality::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "good" => Some(Quality::Good),
            "unreachable" => Some(Quality::Unreachable),
            "exception" => Some(Quality::Exception),
            "sensor_fault" => Some(Quality::SensorFault),
            "stale" => Some(Quality::Stale),
            _ => None,
        }
    }
}

/// Why a timestamp may not be what it seems; absent when the clock was
/// trusted when the reading was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockFlag {
    /// Taken before the gateway's clock was trustworthy; the time was
    /// reconstructed from the monotonic clock once it was.
    Restamped,
    /// The gateway's clock jumped while this was taken; the time may be off
    /// by up to the jump.
    Jumped,
    /// Taken, and sent, before the clock was trustworthy (an alarm is not
    /// held back for the clock): the time is wrong; use the arrival time.
    Unsynced,
}

/// One value of one point at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// `{device}.{point}` as named in the gateway config, e.g. `tank.level`.
    pub point: String,
    /// When the gateway read it.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// Engineering value. Absent when the device gave none (`unreachable`,
    /// `exception`); present but not to be trusted with `sensor_fault` or
    /// `stale`, for diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Engineering unit, e.g. `m`, `MPa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub quality: Quality,
    /// The Modbus exception code when `quality` is `exception`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<u8>,
    /// Set when the timestamp is reconstructed or doubtful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockFlag>,
}

impl Reading {
    /// A good value of `point` read at `ts`, without unit or flags.
    pub fn good(point: &str, ts: OffsetDateTime, value: f64) -> Self {
        Self {
            point: point.into(),
            ts,
            value: Some(value),
            unit: None,
            quality: Quality::Good,
            exception: None,
            clock: None,
        }
    }
}

/// A batch of readings of one gateway, in the compact form on the wire.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "compact::WireIn")]
pub struct Telemetry {
    pub v: u16,
    pub gateway: String,
    /// The gateway's sequence space: a new one starts when its outbox is
    /// created afresh, so `seq` may start over at 1 (0 in old payloads).
    pub epoch: u32,
    pub seq: u64,
    /// Sent from the backlog after an outage: history, not "now".
    pub replay: bool,
    pub readings: Vec<Reading>,
}

impl Telemetry {
    pub fn new(gateway: &str, seq: u64, readings: Vec<Reading>) -> Self {
        Self {
            v: VERSION,
            gateway: gateway.to_owned(),
            epoch: 0,
            seq,
            replay: false,
            readings,
        }
    }
}

/// What happened, for the events stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A discrete state (pump fault, fire alarm, ...) changed value.
    StateChanged,
    /// A point's quality changed (e.g. the device became unreachable).
    QualityChanged,
}

impl EventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::StateChanged => "state_changed",
            EventKind::QualityChanged => "quality_changed",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub point: String,
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub quality: Quality,
    /// Set when the timestamp is reconstructed or doubtful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockFlag>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A batch of events from one gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub v: u16,
    pub gateway: String,
    /// As in [`Telemetry::epoch`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
    pub seq: u64,
    /// Sent after an outage; the events still happened when `ts` says.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay: bool,
    pub events: Vec<Event>,
}

/// The gateway's retained status; `online: false` is also its last-will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub v: u16,
    pub gateway: String,
    pub online: bool,
    /// When the gateway said it; absent in the last-will, which the broker sends later.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ts: Option<OffsetDateTime>,
    /// Gateway software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// Periodic health while online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// How a gateway is doing, sent with its retained status every
/// `health_interval_secs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Health {
    pub uptime_secs: u64,
    pub outbox: OutboxHealth,
    /// Per device: errors since start.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceHealth>,
    /// Free space on the outbox's file system, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
    pub clock: ClockHealth,
}

/// The store-and-forward buffer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutboxHealth {
    /// Readings not yet acknowledged by the broker.
    pub readings: u64,
    /// Event messages not yet acknowledged by the broker.
    pub events: u64,
    /// Age of the oldest unacknowledged reading or event, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_age_secs: Option<u64>,
    /// Bytes in use and the configured limit.
    pub bytes: u64,
    pub limit_bytes: u64,
    /// Routine readings thinned out and dropped to stay under the limit,
    /// since the outbox was created. Never events.
    pub thinned: u64,
    pub dropped: u64,
}

/// Errors of one device since the gateway started.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub polls: u64,
    pub errors: u64,
    /// Quality of its points at the last poll.
    pub quality: Option<Quality>,
}

/// Whether the gateway's clock can be trusted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClockHealth {
    pub trusted: bool,
    /// Jumps of the wall clock seen since start.
    pub jumps: u64,
    /// Readings waiting for a trustworthy clock to be restamped.
    pub held: u64,
}

/// A decoded, validated message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Telemetry(Telemetry),
    Events(Events),
    Status(Status),
}

impl Message {
    pub fn gateway(&self) -> &str {
        match self {
            Message::Telemetry(m) => &m.gateway,
            Message::Events(m) => &m.gateway,
            Message::Status(m) => &m.gateway,
        }
    }
}

/// Decodes and validates one MQTT message: the topic names the gateway and the
/// stream; the payload must match both and carry this contract version.
pub fn decode(topic: &str, payload: &[u8]) -> Result<Message, ContractError> {
    let (gateway, stream) = parse_topic(topic)?;
    let payload = &*inflate(payload)?;
    let json = |source| ContractError::Json { stream, source };
    let (v, payload_gateway, message) = match stream {
        Stream::Telemetry => {
            let m: Telemetry = serde_json::from_slice(payload).map_err(json)?;
            check_seq(m.seq)?;
            if m.readings.is_empty() {
                return Err(ContractError::Empty);
            }
            if let Some(r) = m
                .readings
                .iter()
                .find(|r| r.value.is_some_and(|v| !v.is_finite()))
            {
                return Err(ContractError::NonFinite(r.point.clone()));
            }
            (m.v, m.gateway.clone(), Message::Telemetry(m))
        }
        Stream::Events => {
            let m: Events = serde_json::from_slice(payload).map_err(json)?;
            check_seq(m.seq)?;
            if m.events.is_empty() {
                return Err(ContractError::Empty);
            }
            (m.v, m.gateway.clone(), Message::Events(m))
        }
        Stream::Status => {
            let m: Status = serde_json::from_slice(payload).map_err(json)?;
            (m.v, m.gateway.clone(), Message::Status(m))
        }
    };
    if v != VERSION {
        return Err(ContractError::Version(v));
    }
    if payload_gateway != gateway {
        return Err(ContractError::GatewayMismatch {
            topic: gateway.to_owned(),
            payload: payload_gateway,
        });
    }
    Ok(message)
}

fn check_seq(seq: u64) -> Result<(), ContractError> {
    if seq == 0 {
        Err(ContractError::ZeroSequence)
    } else {
        Ok(())
    }
}

/// Encodes a message body as the JSON the contract documents.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail: no maps with non-string
    // keys, no custom serializers that return errors.
    serde_json::to_vec(message).expect("contract types always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn reading(point: &str, ts: OffsetDateTime, value: Option<f64>) -> Reading {
        Reading {
            point: point.into(),
            ts,
            value,
            unit: Some("m".into()),
            quality: Quality::Good,
            exception: None,
            clock: None,
        }
    }

    fn telemetry(gateway: &str) -> Telemetry {
        Telemetry::new(
            gateway,
            7,
            vec![reading(
                "tank.level",
                datetime!(2026-11-22 08:00:00 UTC),
                Some(2.95),
            )],
        )
    }

    #[test]
    fn a_compact_batch_round_trips_with_qualities_flags_and_units() {
        let t0 = datetime!(2026-11-22 08:00:00.250 UTC);
        let mut readings = Vec::new();
        for cycle in 0..3i64 {
            let ts = t0 + time::Duration::seconds(60 * cycle);
            readings.push(reading("tank.level", ts, Some(2.95 - cycle as f64 * 0.01)));
            let mut pressure = reading("riser.pressure", ts, None);
            pressure.unit = None;
            pressure.quality = Quality::Exception;
            pressure.exception = Some(2);
            pressure.clock = Some(ClockFlag::Restamped);
            readings.push(pressure);
        }
        let mut m = Telemetry::new("gw-1", 3, readings);
        m.epoch = 42;
        m.replay = true;
        let payload = encode(&m);
        let text = std::str::from_utf8(&payload).unwrap();
        assert!(
            text.contains(r#""p":["tank.level","riser.pressure"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#"[1,0,null,"exception",{"exception":2,"clock":"restamped"}]"#),
            "{text}"
        );
        assert_eq!(
            decode("riser/v1/gw-1/telemetry", &payload).unwrap(),
            Message::Telemetry(m.clone())
        );
        let compressed = compress(&payload);
        assert!(compressed.len() < payload.len());
        assert_eq!(
            decode("riser/v1/gw-1/telemetry", &compressed).unwrap(),
            Message::Telemetry(m)
        );
    }

    #[test]
    fn the_verbose_reading_form_is_still_accepted() {
        let payload = br#"{"v":1,"gateway":"gw-1","seq":1,"readings":[{"point":"tank.level","ts":"2026-11-22T08:00:00Z","value":2.95,"unit":"m","quality":"good"}]}"#;
        assert_eq!(
            decode("riser/v1/gw-1/telemetry", payload).unwrap(),
            Message::Telemetry(Telemetry::new(
                "gw-1",
                1,
                vec![reading(
                    "tank.level",
                    datetime!(2026-11-22 08:00:00 UTC),
                    Some(2.95)
                )]
            ))
        );
    }

    #[test]
    fn compact_readings_naming_missing_points_or_impossible_times_are_refused() {
        for payload in [
            r#"{"v":1,"gateway":"gw-1","seq":1,"t0":0,"p":["a"],"r":[[1,0,1.0]]}"#,
            r#"{"v":1,"gateway":"gw-1","seq":1,"t0":9223372036854775807,"p":["a"],"r":[[0,1,1.0]]}"#,
            r#"{"v":1,"gateway":"gw-1","seq":1,"t0":0,"p":["a"],"r":[[0]]}"#,
            r#"{"v":1,"gateway":"gw-1","seq":1,"t0":0,"p":["a"],"u":[],"r":[[0,0,1.0,"good",{},7]]}"#,
            r#"{"v":1,"gateway":"gw-1","seq":1}"#,
        ] {
            let err = decode("riser/v1/gw-1/telemetry", payload.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ContractError::Json { .. }),
                "{payload}: {err}"
            );
        }
    }

    #[test]
    fn a_compressed_payload_that_inflates_without_bound_is_refused() {
        let bomb = compress(&vec![b' '; MAX_INFLATED_BYTES as usize + 10]);
        assert!(matches!(
            decode("riser/v1/gw-1/telemetry", &bomb),
            Err(ContractError::TooLarge)
        ));
        assert!(matches!(
            decode("riser/v1/gw-1/telemetry", &[0x78, 0x00, 0x01]),
            Err(ContractError::Inflate(_))
        ));
    }

    #[test]
    fn telemetry_round_trips_through_its_topic() {
        let m = telemetry("gw-LP-001");
        let topic = topic("gw-LP-001", Stream::Telemetry);
        assert_eq!(topic, "riser/v1/gw-LP-001/telemetry");
        let decoded = decode(&topic, &encode(&m)).unwrap();
        assert_eq!(decoded, Message::Telemetry(m));
    }

    #[test]
    fn payload_from_another_gateway_is_refused() {
        let payload = encode(&telemetry("gw-LP-002"));
        let err = decode("riser/v1/gw-LP-001/telemetry", &payload).unwrap_err();
        assert!(
            matches!(err, ContractError::GatewayMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn other_contract_versions_are_refused() {
        let mut m = telemetry("gw-1");
        m.v = 2;
        let err = decode("riser/v1/gw-1/telemetry", &encode(&m)).unwrap_err();
        assert!(matches!(err, ContractError::Version(2)), "{err}");
    }

    #[test]
    fn malformed_topics_and_payloads_are_refused() {
        for topic in [
            "riser/v1/gw-1",
            "riser/v2/gw-1/telemetry",
            "riser/v1/gw-1/other",
            "riser/v1/gw+1/telemetry",
            "riser/v1//telemetry",
        ] {
            assert!(decode(topic, b"{}").is_err(), "{topic} was accepted");
        }
        let err = decode("riser/v1/gw-1/telemetry", b"{\"v\":1").unwrap_err();
        assert!(matches!(err, ContractError::Json { .. }), "{err}");
        let mut m = telemetry("gw-1");
        m.seq = 0;
        assert!(matches!(
            decode("riser/v1/gw-1/telemetry", &encode(&m)),
            Err(ContractError::ZeroSequence)
        ));
    }

    #[test]
    fn status_without_timestamp_is_a_valid_last_will() {
        let will = Status {
            v: VERSION,
            gateway: "gw-1".into(),
            online: false,
            ts: None,
            software: None,
            health: None,
        };
        let payload = encode(&will);
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            r#"{"v":1,"gateway":"gw-1","online":false}"#
        );
        assert_eq!(
            decode("riser/v1/gw-1/status", &payload).unwrap(),
            Message::Status(will)
        );
    }
}
