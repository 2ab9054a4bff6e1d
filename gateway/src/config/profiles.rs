//! The device profile library: TOML files describing the register map of
//! common field devices, so a site config only names a profile, a slave id
//! and what each channel measures. Built-in profiles live in
//! `gateway/profiles/`; a site may add its own directory (`profiles_dir`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CurrentLoop, DeviceConfig, PointConfig};

const BUILTIN: &[(&str, &str)] = &[
    (
        "qdy30a-level.toml",
        include_str!("../../profiles/qdy30a-level.toml"),
    ),
    (
        "ptmb-pressure.toml",
        include_str!("../../profiles/ptmb-pressure.toml"),
    ),
    (
        "ai8-4-20ma.toml",
        include_str!("../../profiles/ai8-4-20ma.toml"),
    ),
    (
        "pump-cabinet.toml",
        include_str!("../../profiles/pump-cabinet.toml"),
    ),
    (
        "fire-panel-modbus.toml",
        include_str!("../../profiles/fire-panel-modbus.toml"),
    ),
];

/// One device type's register map.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Library name, e.g. `qdy30a-level`.
    pub name: String,
    /// What the device is and its register layout, for people.
    pub description: String,
    /// Most registers the device takes in one read.
    #[serde(default)]
    pub max_registers_per_read: Option<u16>,
    /// Unused registers a read may span on this device.
    #[serde(default)]
    pub max_gap: Option<u16>,
    /// Every point (channel) the device offers.
    pub points: Vec<PointConfig>,
}

/// What one channel of a profile measures at this site; unset fields keep
/// the profile's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Point name to report instead of the channel's, e.g. `roof_tank_level`.
    #[serde(default)]
    pub name: Option<String>,
    /// Engineering unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Engineering values at 4 and 20 mA, for current-loop channels.
    #[serde(default)]
    pub current_loop: Option<CurrentLoop>,
    /// The transmitter's measuring range.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Stale after this many seconds without change.
    #[serde(default)]
    pub frozen_after_secs: Option<u64>,
    /// Overrides the point's `deadband`.
    #[serde(default)]
    pub deadband: Option<f64>,
    /// Send changes on the event stream.
    #[serde(default)]
    pub event: Option<bool>,
}

/// Profiles by name.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The profiles shipped with the gateway.
    pub fn builtin() -> Self {
        let mut profiles = Self::default();
        for (file, text) in BUILTIN {
            // A broken built-in profile is a build defect, caught by the tests.
            let profile =
                toml::from_str(text).unwrap_or_else(|e| panic!("built-in profile {file}: {e}"));
            profiles.add(profile);
        }
        profiles
    }

    /// The built-in profiles plus every `*.toml` in `dir` (same name: the site's wins).
    pub fn with_dir(dir: &Path) -> Result<Self, String> {
        let mut profiles = Self::builtin();
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("profiles_dir {}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let profile =
                toml::from_str(&text).map_err(|e| format!("profile {}: {e}", path.display()))?;
            profiles.add(profile);
        }
        Ok(profiles)
    }

    fn add(&mut self, profile: Profile) {
        self.by_name.insert(profile.name.clone(), profile);
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }

    /// Turns a device that names a profile into one with explicit points:
    /// the channels listed in `channels` (all of them if none are listed),
    /// with the site's overrides, then the device's own points. Devices
    /// without a profile are left alone.
    pub fn resolve(&self, device: &mut DeviceConfig) -> Result<(), String> {
        let Some(name) = device.profile.take() else {
            return Ok(());
        };
        let profile = self.get(&name).ok_or_else(|| {
            let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            format!(
                "profile `{name}` is unknown; known profiles: {}",
                known.join(", ")
            )
        })?;
        let channels = std::mem::take(&mut device.channels);
        let mut points: Vec<PointConfig> = if channels.is_empty() {
            profile.points.clone()
        } else {
            let mut chosen = Vec::new();
            for (channel, site) in channels {
                let Some(point) = profile.points.iter().find(|p| p.name == channel) else {
                    let known: Vec<&str> = profile.points.iter().map(|p| p.name.as_str()).collect();
                    return Err(format!(
                        "channels.{channel}: profile `{name}` has no such channel; it has {}",
                        known.join(", ")
                    ));
                };
                chosen.push(apply(point.clone(), site));
            }
            chosen
        };
        points.append(&mut device.points);
        device.points = points;
        device.max_registers_per_read = device
            .max_registers_per_read
            .or(profile.max_registers_per_read);
        device.max_gap = device.max_gap.or(profile.max_gap);
        Ok(())
    }
}

fn apply(mut point: PointConfig, site: ChannelConfig) -> PointConfig {
    if let Some(name) = site.name {
        point.name = name;
    }
    point.unit = site.unit.or(point.unit);
    point.current_loop = site.current_loop.or(point.current_loop);
    point.range = site.range.or(point.range);
    point.frozen_after_secs = site.frozen_after_secs.or(point.frozen_after_secs);
    point.deadband = site.deadband.unwrap_or(point.deadband);
    point.event = site.event.unwrap_or(point.event);
    point
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses_and_names_itself_after_its_file() {
        let profiles = Profiles::builtin();
        assert_eq!(profiles.iter().count(), BUILTIN.len());
        for (file, _) in BUILTIN {
            assert!(
                profiles.get(file.trim_end_matches(".toml")).is_some(),
                "{file}"
            );
        }
    }

    #[test]
    fn channels_pick_rename_and_range_a_profile_point() {
        let mut device = DeviceConfig {
            profile: Some("ai8-4-20ma".into()),
            channels: BTreeMap::from([(
                "ch2".into(),
                ChannelConfig {
                    name: Some("riser_pressure".into()),
                    unit: Some("MPa".into()),
                    current_loop: Some(CurrentLoop {
                        at_4ma: 0.0,
                        at_20ma: 1.6,
                    }),
                    ..ChannelConfig::default()
                },
            )]),
            ..DeviceConfig::new("ai", "rs485", 5)
        };
        Profiles::builtin().resolve(&mut device).unwrap();
        assert_eq!(device.points.len(), 1, "only the channel in use is read");
        let p = &device.points[0];
        assert_eq!(
            (p.name.as_str(), p.register, p.unit.as_deref()),
            ("riser_pressure", 1, Some("MPa"))
        );
        assert_eq!(
            p.current_loop,
            Some(CurrentLoop {
                at_4ma: 0.0,
                at_20ma: 1.6
            })
        );
        assert_eq!(p.scale, 0.001, "the profile's µA scaling is kept");
        assert!(device.profile.is_none(), "resolving twice changes nothing");
    }

    #[test]
    fn an_unknown_profile_or_channel_is_refused_with_what_exists() {
        let mut device = DeviceConfig {
            profile: Some("qdy31".into()),
            ..DeviceConfig::new("tank", "rs485", 1)
        };
        let err = Profiles::builtin().resolve(&mut device).unwrap_err();
        assert!(err.contains("qdy30a-level"), "{err}");
        let mut device = DeviceConfig {
            profile: Some("qdy30a-level".into()),
            channels: BTreeMap::from([("depth".into(), ChannelConfig::default())]),
            ..DeviceConfig::new("tank", "rs485", 1)
        };
        let err = Profiles::builtin().resolve(&mut device).unwrap_err();
        assert!(
            err.contains("channels.depth") && err.contains("level"),
            "{err}"
        );
    }
}
