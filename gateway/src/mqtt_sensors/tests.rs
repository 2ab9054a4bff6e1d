use super::*;
use crate::config::SensorPoint;
use time::macros::datetime;

fn config() -> SensorsConfig {
    SensorsConfig {
        host: "127.0.0.1".into(),
        port: 1883,
        username: None,
        password: None,
        devices: vec![SensorDevice {
            name: "roof_tank_nb".into(),
            topic: "site/nb-0042/up".into(),
            max_age_secs: 3600,
            points: vec![
                SensorPoint {
                    name: "level".into(),
                    pointer: "/data/level_cm".into(),
                    unit: Some("m".into()),
                    scale: 0.01,
                    offset: 0.0,
                },
                SensorPoint {
                    name: "battery".into(),
                    pointer: "/battery".into(),
                    unit: Some("%".into()),
                    scale: 1.0,
                    offset: 0.0,
                },
            ],
        }],
    }
}

const T0: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

#[test]
fn json_pointers_pick_and_scale_fields_of_numbers_strings_and_booleans() {
    let device = &config().devices[0];
    let values = map_payload(device, br#"{"data":{"level_cm":"245"},"battery":87}"#).unwrap();
    assert_eq!(
        values,
        vec![
            ("roof_tank_nb.level".into(), 2.45),
            ("roof_tank_nb.battery".into(), 87.0)
        ]
    );
}

#[test]
fn malformed_payloads_are_counted_and_keep_the_last_value() {
    let config = config();
    let hub = SensorHub::default();
    hub.receive(
        &config,
        "site/nb-0042/up",
        br#"{"data":{"level_cm":250},"battery":90}"#,
        T0,
    );
    hub.receive(&config, "site/nb-0042/up", b"\xff\xfe not json", T0);
    hub.receive(
        &config,
        "site/nb-0042/up",
        br#"{"data":{},"battery":90}"#,
        T0,
    );
    hub.receive(&config, "site/other/up", b"ignored: nobody subscribed", T0);
    assert_eq!(hub.malformed.load(Ordering::Relaxed), 2);
    let readings = hub.readings(&config, T0);
    assert_eq!(readings[0].value, Some(2.5));
    assert_eq!(readings[0].quality, Quality::Good);
}

#[test]
fn a_silent_sensor_turns_stale_and_one_never_heard_is_unreachable() {
    let config = config();
    let hub = SensorHub::default();
    assert!(
        hub.readings(&config, T0)
            .iter()
            .all(|r| r.quality == Quality::Unreachable && r.value.is_none())
    );
    hub.receive(
        &config,
        "site/nb-0042/up",
        br#"{"data":{"level_cm":250},"battery":90}"#,
        T0,
    );
    let later = hub.readings(&config, T0 + time::Duration::seconds(3601));
    assert!(
        later.iter().all(|r| r.quality == Quality::Stale),
        "{later:?}"
    );
    assert_eq!(later[0].ts, T0, "the reading keeps the time it was sent");
}
