//! Wireless (NB-IoT / 4G) sensors that publish JSON over MQTT to a site
//! broker: the gateway subscribes to each sensor's topic and maps payload
//! fields to points with JSON pointers. A malformed payload is counted and
//! logged; the point keeps its last value, which turns `stale` when the
//! sensor stays silent longer than its `max_age_secs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riser_contract::{Quality, Reading};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{SensorDevice, SensorsConfig};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    #[error("payload is not JSON: {0}")]
    Json(String),
    #[error("no number at `{pointer}`")]
    Missing { pointer: String },
}

/// Engineering values of `device`'s points from one payload: the field at
/// each point's JSON pointer (a number, a numeric string or a boolean),
/// times `scale`, plus `offset`. Pure.
pub fn map_payload(
    device: &SensorDevice,
    payload: &[u8],
) -> Result<Vec<(String, f64)>, PayloadError> {
    let json: Value =
        serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
    device
        .points
        .iter()
        .map(|point| {
            let missing = || PayloadError::Missing {
                pointer: point.pointer.clone(),
            };
            let raw = match json.pointer(&point.pointer).ok_or_else(missing)? {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            }
            .filter(|v| v.is_finite())
            .ok_or_else(missing)?;
            Ok((
                format!("{}.{}", device.name, point.name),
                raw * point.scale + point.offset,
            ))
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Latest {
    value: f64,
    ts: OffsetDateTime,
}

/// The latest value of every sensor point, shared between the MQTT task and
/// the acquisition loop.
#[derive(Clone, Default)]
pub struct SensorHub {
    latest: Arc<Mutex<HashMap<String, Latest>>>,
    /// Payloads refused (not JSON, a field missing).
    pub malformed: Arc<AtomicU64>,
}

impl SensorHub {
    fn store(&self, values: Vec<(String, f64)>, ts: OffsetDateTime) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        for (point, value) in values {
            latest.insert(point, Latest { value, ts });
        }
    }

    /// A reading of every configured sensor point as of `now`: `good` while
    /// fresh, `stale` once older than the device's `max_age_secs`,
    /// `unreachable` with no value if it never reported.
    pub fn readings(&self, config: &SensorsConfig, now: OffsetDateTime) -> Vec<Reading> {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        config
            .devices
            .iter()
            .flat_map(|device| device.points.iter().map(move |p| (device, p)))
            .map(|(device, point)| {
                let name = format!("{}.{}", device.name, point.name);
                let (value, ts, quality) = match latest.get(&name) {
                    Some(l) if now - l.ts > time::Duration::seconds(device.max_age_secs as i64) => {
                        (Some(l.value), l.ts, Quality::Stale)
                    }
                    Some(l) => (Some(l.value), l.ts, Quality::Good),
                    None => (None, now, Quality::Unreachable),
                };
                Reading {
                    point: name,
                    ts,
                    value,
                    unit: point.unit.clone(),
                    quality,
                    exception: None,
                    clock: None,
                }
            })
            .collect()
    }

    /// Takes one message; refusals are counted and logged.
    pub fn receive(
        &self,
        config: &SensorsConfig,
        topic: &str,
        payload: &[u8],
        now: OffsetDateTime,
    ) {
        for device in config.devices.iter().filter(|d| d.topic == topic) {
            match map_payload(device, payload) {
                Ok(values) => self.store(values, now),
                Err(error) => {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sensor = %device.name, topic = %topic, error = %error, "sensor payload refused");
                }
            }
        }
    }
}

/// Subscribes to every sensor topic on the site broker until `shutdown`,
/// reconnecting (and resubscribing) after a loss.
pub async fn run(
    gateway_id: String,
    config: SensorsConfig,
    hub: SensorHub,
    shutdown: CancellationToken,
) {
    let mut options = MqttOptions::new(format!("{gateway_id}-sensors"), &config.host, config.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true);
    if let (Some(user), Some(pass)) = (&config.username, &config.password) {
        options.set_credentials(user, pass);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut warned = false;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                warned = false;
                for device in &config.devices {
                    if let Err(error) = client.try_subscribe(device.topic.clone(), QoS::AtLeastOnce)
                    {
                        tracing::error!(sensor = %device.name, error = %error, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                hub.receive(&config, &p.topic, &p.payload, OffsetDateTime::now_utc());
            }
            Ok(_) => {}
            Err(error) => {
                if !warned {
                    tracing::warn!(broker = %format!("{}:{}", config.host, config.port), error = %error, "site sensor broker unreachable; retrying");
                    warned = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
