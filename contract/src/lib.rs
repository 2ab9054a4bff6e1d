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
//! and see gaps. See `contract/README.md` for example payloads.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
}

/// A batch of readings: one poll cycle of one gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub v: u16,
    pub gateway: String,
    pub seq: u64,
    pub readings: Vec<Reading>,
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
}

/// A batch of events from one gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub v: u16,
    pub gateway: String,
    pub seq: u64,
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

    fn telemetry(gateway: &str) -> Telemetry {
        Telemetry {
            v: VERSION,
            gateway: gateway.into(),
            seq: 7,
            readings: vec![Reading {
                point: "tank.level".into(),
                ts: datetime!(2026-11-22 08:00:00 UTC),
                value: Some(2.95),
                unit: Some("m".into()),
                quality: Quality::Good,
                exception: None,
            }],
        }
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
