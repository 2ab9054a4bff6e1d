//! Installer tools: read every configured point once (`check`) or one
//! register range of one device (`probe`), and show what came off the wire.

use std::fmt::Write;

use futures::future::join_all;
use riser_contract::Quality;

use crate::config::{Config, DeviceConfig, LineConfig, PointConfig};
use crate::modbus::{LinePoller, Polled};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub polled: Polled,
    pub range: Option<[f64; 2]>,
}

/// Polls every line of `config` once; rows in config order.
pub async fn check(config: &Config) -> Vec<Row> {
    let mut lines: Vec<LinePoller> = config
        .lines
        .iter()
        .map(|line| LinePoller::new(line.clone(), devices_on(config, line)))
        .collect();
    let polled: Vec<Polled> = join_all(lines.iter_mut().map(LinePoller::poll_raw))
        .await
        .into_iter()
        .flatten()
        .collect();
    let ranges: Vec<(String, Option<[f64; 2]>)> = config
        .devices
        .iter()
        .flat_map(|d| {
            d.points
                .iter()
                .map(move |p| (format!("{}.{}", d.name, p.name), p.range))
        })
        .collect();
    let mut rows: Vec<Row> = polled
        .into_iter()
        .map(|polled| {
            let range = ranges
                .iter()
                .find(|(n, _)| *n == polled.reading.point)
                .and_then(|(_, r)| *r);
            Row { polled, range }
        })
        .collect();
    let order = |row: &Row| {
        ranges
            .iter()
            .position(|(n, _)| *n == row.polled.reading.point)
    };
    rows.sort_by_key(order);
    rows
}

fn devices_on(config: &Config, line: &LineConfig) -> Vec<DeviceConfig> {
    config
        .devices
        .iter()
        .filter(|d| d.line == line.name)
        .cloned()
        .collect()
}

/// Reads `count` consecutive values like `point` from one device once.
pub async fn probe(line: LineConfig, unit: u8, point: PointConfig, count: u16) -> Vec<Row> {
    let width = point.data_type.width();
    let points = (0..count)
        .map(|i| {
            let register = point.register + i * width;
            PointConfig {
                name: register.to_string(),
                register,
                ..point.clone()
            }
        })
        .collect();
    let device = DeviceConfig {
        points,
        ..DeviceConfig::new("probe", line.name.clone(), unit)
    };
    let mut poller = LinePoller::new(line, vec![device]);
    poller
        .poll_raw()
        .await
        .into_iter()
        .map(|polled| Row {
            polled,
            range: point.range,
        })
        .collect()
}

fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}"))
}

/// The rows as an aligned text table; the last column says whether the
/// value is within its range.
pub fn render(rows: &[Row]) -> String {
    let mut cells = vec![["POINT", "RAW", "VALUE", "UNIT", "QUALITY", "RANGE"].map(String::from)];
    for row in rows {
        let r = &row.polled.reading;
        let quality = match (r.quality, r.exception) {
            (Quality::Exception, Some(code)) => format!("exception {code:#04x}"),
            (q, _) => q.as_str().to_owned(),
        };
        let range = match (row.range, r.value) {
            (Some([lo, hi]), Some(v)) if (lo..=hi).contains(&v) => format!("{lo}..{hi} ok"),
            (Some([lo, hi]), Some(_)) => format!("{lo}..{hi} OUT OF RANGE"),
            (Some([lo, hi]), None) => format!("{lo}..{hi}"),
            (None, _) => "-".into(),
        };
        cells.push([
            r.point.clone(),
            number(row.polled.raw),
            number(r.value),
            r.unit.clone().unwrap_or_else(|| "-".into()),
            quality,
            range,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use riser_contract::Reading;
    use time::macros::datetime;

    fn row(
        point: &str,
        raw: Option<f64>,
        value: Option<f64>,
        quality: Quality,
        range: Option<[f64; 2]>,
    ) -> Row {
        Row {
            polled: Polled {
                reading: Reading {
                    point: point.into(),
                    ts: datetime!(2026-11-22 08:00 UTC),
                    value,
                    unit: Some("m".into()),
                    quality,
                    exception: (quality == Quality::Exception).then_some(2),
                    clock: None,
                },
                raw,
            },
            range,
        }
    }

    #[test]
    fn the_table_shows_raw_value_quality_and_range_check() {
        let text = render(&[
            row(
                "tank.level",
                Some(2400.0),
                Some(2.4),
                Quality::Good,
                Some([0.0, 3.0]),
            ),
            row(
                "riser.pressure",
                Some(1700.0),
                Some(1.7),
                Quality::SensorFault,
                Some([0.0, 1.6]),
            ),
            row("pumps.fire_fault", None, None, Quality::Exception, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("POINT"), "{text}");
        assert!(
            lines[1].contains("2400") && lines[1].contains("2.4") && lines[1].ends_with("0..3 ok"),
            "{text}"
        );
        assert!(
            lines[2].contains("sensor_fault") && lines[2].ends_with("OUT OF RANGE"),
            "{text}"
        );
        assert!(lines[3].contains("exception 0x02"), "{text}");
    }
}
