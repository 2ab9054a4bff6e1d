//! Readings as InfluxDB line protocol (millisecond timestamps), built with
//! the `influxdb2` crate's `DataPoint`, which does the escaping.

use influxdb2::models::{DataPoint, WriteDataPoint};
use riser_contract::{ClockFlag, Quality, Reading};

/// The measurement every reading is written to.
pub const MEASUREMENT: &str = "reading";

/// The line protocol of `readings` (one line each, `\n`-terminated) and how
/// many points that is.
pub fn encode(gateway: &str, readings: &[Reading], replay: bool) -> (String, u32) {
    let mut out = Vec::with_capacity(readings.len() * 120);
    for reading in readings {
        point(gateway, reading, replay)
            .write_data_point_to(&mut out)
            .expect("writing to a Vec cannot fail");
    }
    // The crate writes only the `&str`s given to it, escaped with ASCII.
    let text = String::from_utf8(out).expect("line protocol of UTF-8 strings is UTF-8");
    (text, readings.len() as u32)
}

fn point(gateway: &str, reading: &Reading, replay: bool) -> DataPoint {
    let mut builder = DataPoint::builder(MEASUREMENT)
        .tag("gateway", tag_value(gateway))
        .tag("point", tag_value(&reading.point))
        .tag("quality", reading.quality.as_str());
    if let Some(unit) = reading.unit.as_deref().filter(|u| !u.is_empty()) {
        builder = builder.tag("unit", tag_value(unit));
    }
    match reading.value {
        Some(value) => builder = builder.field("value", value),
        // Line protocol needs one field: keep the record of the quality.
        None => builder = builder.field("no_value", true),
    }
    if let (Quality::Exception, Some(code)) = (reading.quality, reading.exception) {
        builder = builder.field("exception", i64::from(code));
    }
    if let Some(clock) = reading.clock {
        builder = builder.field("clock", clock_str(clock));
    }
    if replay {
        builder = builder.field("replay", true);
    }
    builder
        .timestamp(riser_contract::unix_ms(reading.ts))
        .build()
        .expect("a point always has a field")
}

fn clock_str(clock: ClockFlag) -> &'static str {
    match clock {
        ClockFlag::Restamped => "restamped",
        ClockFlag::Jumped => "jumped",
        ClockFlag::Unsynced => "unsynced",
    }
}

/// Line protocol cannot carry a line break in a tag, and a backslash in one
/// escapes what follows: both become `_` (the crate escapes `,`, `=`, ` `).
/// An empty value is not allowed either: it becomes `_`.
fn tag_value(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    s.chars()
        .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn reading(point: &str, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            point: point.into(),
            ts: datetime!(2026-11-22 08:00:00.250 UTC),
            value,
            unit: Some("m".into()),
            quality,
            exception: None,
            clock: None,
        }
    }

    #[test]
    fn a_reading_is_one_line_with_tags_value_and_milliseconds() {
        let (text, n) = encode(
            "gw-1",
            &[reading("tank.level", Some(2.95), Quality::Good)],
            false,
        );
        assert_eq!(n, 1);
        assert_eq!(
            text,
            "reading,gateway=gw-1,point=tank.level,quality=good,unit=m value=2.95 1795334400250\n"
        );
    }

    #[test]
    fn a_reading_without_value_keeps_its_quality_exception_and_flags() {
        let mut r = reading("riser.pressure", None, Quality::Exception);
        r.unit = None;
        r.exception = Some(2);
        r.clock = Some(ClockFlag::Restamped);
        let (text, _) = encode("gw-1", &[r], true);
        assert_eq!(
            text,
            "reading,gateway=gw-1,point=riser.pressure,quality=exception clock=\"restamped\",exception=2i,no_value=t,replay=t 1795334400250\n"
        );
    }

    #[test]
    fn odd_characters_in_tags_cannot_break_the_line() {
        let mut r = reading("pump 1,a=b\nc\\", Some(1.0), Quality::Good);
        r.unit = Some(String::new());
        let (text, _) = encode("gw-1", &[r], false);
        assert_eq!(
            text,
            "reading,gateway=gw-1,point=pump\\ 1\\,a\\=b_c_,quality=good value=1 1795334400250\n"
        );
    }
}
