//! A wireless (NB-IoT / 4G) pressure gauge on a building's highest hydrant
//! that publishes JSON over MQTT, as such sensors do to a site or platform
//! broker. Building-wide communication faults apply: `dead` stops it,
//! `garbage` sends a payload that is not JSON, `frozen` repeats the value
//! it had when the fault began.

use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

use crate::{CommFault, Sim};

/// Where and how often the gauge reports.
#[derive(Debug, Clone)]
pub struct WirelessGauge {
    /// Building whose most unfavourable point the gauge sits on.
    pub building_id: String,
    /// Broker host and port.
    pub host: String,
    pub port: u16,
    /// Topic it publishes on.
    pub topic: String,
    /// Time between reports.
    pub interval: Duration,
}

/// The gauge's payload: pressure in kPa (integer, as NB-IoT gauges send),
/// battery percent.
pub fn payload(pressure_mpa: f64, battery_percent: u8) -> Vec<u8> {
    format!(
        r#"{{"data":{{"pressure_kpa":{}}},"battery":{battery_percent}}}"#,
        (pressure_mpa * 1000.0).round() as i64
    )
    .into_bytes()
}

/// Publishes until `shutdown`.
pub async fn run(sim: Sim, gauge: WirelessGauge, shutdown: CancellationToken) {
    let client_id = format!("nb-{}", gauge.building_id);
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new(client_id, &gauge.host, gauge.port), 16);
    let mut ticker = tokio::time::interval(gauge.interval);
    let mut frozen: Option<f64> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => {
                if let Err(error) = event {
                    tracing::debug!(building = %gauge.building_id, error = %error, "wireless gauge offline");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            _ = ticker.tick() => {
                let Some(snapshot) = sim.snapshot(&gauge.building_id) else { return };
                let fault = snapshot.comm_faults.iter().find(|f| f.unit.is_none()).map(|f| f.fault.clone());
                let body = match fault {
                    Some(CommFault::Dead) => continue,
                    Some(CommFault::Garbage) => b"\x00\xffnot json".to_vec(),
                    Some(CommFault::Frozen) => payload(*frozen.get_or_insert(snapshot.pressure_mpa), 87),
                    _ => {
                        frozen = None;
                        payload(snapshot.pressure_mpa, 87)
                    }
                };
                if client.try_publish(&gauge.topic, QoS::AtLeastOnce, false, body).is_err() {
                    tracing::debug!(building = %gauge.building_id, "wireless gauge queue full; report dropped");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_carries_pressure_in_whole_kilopascals() {
        assert_eq!(
            payload(0.0823, 87),
            br#"{"data":{"pressure_kpa":82},"battery":87}"#.to_vec()
        );
    }
}
