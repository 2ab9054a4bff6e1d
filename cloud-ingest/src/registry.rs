//! The building registry: what each building is (use, height, class, tank
//! geometry), who reads it (gateway) and which gateway points mean what.
//! Loaded from a TOML file (`[[building]]` tables) or from a CSV file shaped
//! like `data/buildings-liangping.csv`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::BuildingClass;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("registry {path}: {message}")]
    Parse { path: String, message: String },
    #[error("registry: {0}")]
    Invalid(String),
}

/// Building use, as GB 50016 classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    Residential,
    Public,
}

/// The rooftop fire tank (高位消防水箱).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tank {
    /// Cross-section area, m².
    pub area_m2: f64,
    /// Inner height, m.
    pub height_m: f64,
    /// Level below which water cannot be drawn, m.
    pub dead_level_m: f64,
}

/// The fire pool (消防水池), where a building has one monitored: its level
/// point, geometry and the effective volume its design requires (GB
/// 50974-2014 4.3.2 computes it from the fire flows and durations, so no
/// table gives it by class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirePool {
    /// The gateway point carrying the pool's water level, m.
    pub level: String,
    /// Cross-section area, m².
    pub area_m2: f64,
    /// Inner height, m.
    pub height_m: f64,
    /// Level below which water cannot be drawn, m.
    pub dead_level_m: f64,
    /// Required effective volume from the design, m³.
    pub required_volume_m3: f64,
}

/// Which gateway point carries which quantity. The first two are required:
/// a building whose tank level or riser pressure never reported is
/// `unknown`. Every other point is optional: `""` switches it off, and a
/// point the gateway has never reported counts as not installed (its
/// rules do not apply) until it first reports. The defaults are the names
/// the gateway gives the device-sim's devices (`tank`, `riser`, `pumps`
/// with the `pump-cabinet` profile, `panel` with `fire-panel-modbus`), and
/// `hydrant.pressure` / `sprinkler.pressure` for those transmitters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointMap {
    /// Rooftop tank water level, m.
    pub tank_level: String,
    /// Static pressure at the most unfavourable point (最不利点), MPa.
    pub static_pressure: String,
    /// The fire pool, if monitored (its level point is then required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_pool: Option<FirePool>,
    /// Indoor hydrant outlet pressure (栓口压力), MPa.
    pub hydrant_pressure: String,
    /// Sprinkler main pressure (喷淋主管), MPa.
    pub sprinkler_pressure: String,
    /// Duty fire pump running (1).
    pub fire_pump_running: String,
    /// Duty fire pump tripped (1).
    pub fire_pump_fault: String,
    /// Duty fire pump cabinet in auto (1); 0 is manual.
    pub fire_pump_auto: String,
    /// Duty fire pump cabinet in manual (1), for cabinets with such a bit.
    pub fire_pump_manual: String,
    /// Standby (备用) fire pump running (1).
    pub standby_pump_running: String,
    /// Standby fire pump tripped (1).
    pub standby_pump_fault: String,
    /// Standby fire pump in auto (1).
    pub standby_pump_auto: String,
    /// Standby fire pump in manual (1).
    pub standby_pump_manual: String,
    /// Jockey pump (稳压泵) tripped (1); judged only where `jockey_pump`.
    pub jockey_pump_fault: String,
    /// Jockey pump in auto (1).
    pub jockey_pump_auto: String,
    /// Jockey pump in manual (1).
    pub jockey_pump_manual: String,
    /// Jockey pump start counter (counts up; a drop is a restart).
    pub jockey_pump_starts: String,
    /// Fire alarm panel: fire alarm (火警).
    pub panel_fire_alarm: String,
    /// Panel fault (故障).
    pub panel_fault: String,
    /// Panel points disabled (屏蔽).
    pub panel_disabled: String,
    /// Panel mains power failed (主电故障).
    pub panel_mains_fault: String,
    /// Panel backup power failed (备电故障).
    pub panel_backup_fault: String,
}

impl Default for PointMap {
    fn default() -> Self {
        Self {
            tank_level: "tank.level".into(),
            static_pressure: "riser.pressure".into(),
            fire_pool: None,
            hydrant_pressure: "hydrant.pressure".into(),
            sprinkler_pressure: "sprinkler.pressure".into(),
            fire_pump_running: "pumps.fire_running".into(),
            fire_pump_fault: "pumps.fire_fault".into(),
            fire_pump_auto: "pumps.fire_auto".into(),
            fire_pump_manual: String::new(),
            standby_pump_running: "pumps.standby_running".into(),
            standby_pump_fault: "pumps.standby_fault".into(),
            standby_pump_auto: "pumps.standby_auto".into(),
            standby_pump_manual: String::new(),
            jockey_pump_fault: "pumps.jockey_fault".into(),
            jockey_pump_auto: "pumps.jockey_auto".into(),
            jockey_pump_manual: String::new(),
            jockey_pump_starts: "pumps.jockey_starts".into(),
            panel_fire_alarm: "panel.fire_alarm".into(),
            panel_fault: "panel.fault".into(),
            panel_disabled: "panel.disabled".into(),
            panel_mains_fault: "panel.mains_fault".into(),
            panel_backup_fault: "panel.backup_fault".into(),
        }
    }
}

impl PointMap {
    /// Replaces entries from `name=point` pairs separated by `;` (the CSV
    /// `points` column), e.g. `hydrant_pressure=hyd.p;panel_fault=`.
    pub fn with_overrides(self, pairs: &str) -> Result<Self, String> {
        let mut map = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("a point map serializes to a JSON object"),
        };
        for pair in pairs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, point) = pair
                .split_once('=')
                .ok_or_else(|| format!("points: `{pair}` is not name=point"))?;
            let name = name.trim();
            match map.get_mut(name) {
                Some(entry @ serde_json::Value::String(_)) => {
                    *entry = serde_json::Value::String(point.trim().to_owned());
                }
                _ => return Err(format!("points: no point named `{name}`")),
            }
        }
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
    }
}

/// Who answers for a building (逐栋明确: the work plans name all three for
/// every building and make them public); alerts are routed to them by
/// role. Names as the registry gives them; contacts live with the
/// notification config, keyed by these names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Parties {
    /// 管理单位 / 物业: the management unit or property company.
    #[serde(default)]
    pub management_unit: Option<String>,
    /// 维保单位: the fire-facility maintenance contractor.
    #[serde(default)]
    pub contractor: Option<String>,
    /// The contractor's duty e-mail, where the registry gives one.
    #[serde(default)]
    pub contractor_email: Option<String>,
    /// 楼栋长: the building manager.
    #[serde(default)]
    pub building_manager: Option<String>,
}

/// One building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Building {
    pub id: String,
    pub name: String,
    /// 区/县
    pub district: String,
    /// 乡镇/街道
    pub town: String,
    /// 社区
    #[serde(default)]
    pub community: String,
    /// Street address, as people search for it.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(rename = "use")]
    pub use_: Use,
    pub height_m: f64,
    pub storeys: u32,
    /// Public buildings: any floor over 1000 m² of commercial use (decides 一类).
    #[serde(default)]
    pub commercial_floor_over_1000m2: bool,
    /// Class as recorded by the authority; derived from use and height when absent.
    #[serde(default)]
    pub class: Option<BuildingClass>,
    pub tank: Tank,
    /// A jockey pump (稳压泵) keeps the pressure; the minimum at the most
    /// unfavourable point is then 0.15 MPa (GB 50974-2014 5.2.2).
    #[serde(default)]
    pub jockey_pump: bool,
    /// The gateway that reads this building's points.
    pub gateway: String,
    #[serde(default)]
    pub points: PointMap,
    /// Who answers for it.
    #[serde(default)]
    pub parties: Parties,
}

impl Building {
    /// The recorded class, or the one GB 50016 gives for use and height.
    pub fn class(&self) -> BuildingClass {
        self.class.unwrap_or_else(|| {
            BuildingClass::derive(self.use_, self.height_m, self.commercial_floor_over_1000m2)
        })
    }
}

/// All buildings, by id, in file order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    buildings: Vec<Building>,
    by_id: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    building: Vec<Building>,
}

/// A row of the district CSV (`data/buildings-liangping.csv`); optional
/// columns: `gateway` (default `gw-{id}`), `jockey_pump` (yes/no), `points`
/// (`name=point;...` over the default [`PointMap`]) and the fire pool's
/// `fire_pool_level`, `fire_pool_area_m2`, `fire_pool_height_m`,
/// `fire_pool_dead_level_m`, `fire_pool_required_m3` (all or none).
#[derive(Deserialize)]
struct CsvRow {
    id: String,
    name: String,
    district: String,
    town: String,
    community: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(rename = "use")]
    use_: Use,
    commercial_floor_over_1000m2: String,
    height_m: f64,
    storeys: u32,
    tank_area_m2: f64,
    tank_height_m: f64,
    tank_dead_level_m: f64,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    jockey_pump: Option<String>,
    #[serde(default)]
    points: Option<String>,
    #[serde(default)]
    fire_pool_level: Option<String>,
    #[serde(default)]
    fire_pool_area_m2: Option<f64>,
    #[serde(default)]
    fire_pool_height_m: Option<f64>,
    #[serde(default)]
    fire_pool_dead_level_m: Option<f64>,
    #[serde(default)]
    fire_pool_required_m3: Option<f64>,
    #[serde(default)]
    management_unit: Option<String>,
    #[serde(default)]
    contractor: Option<String>,
    #[serde(default)]
    contractor_email: Option<String>,
    #[serde(default)]
    building_manager: Option<String>,
}

impl CsvRow {
    fn point_map(&self) -> Result<PointMap, String> {
        let mut points = match &self.points {
            Some(pairs) => PointMap::default().with_overrides(pairs)?,
            None => PointMap::default(),
        };
        let pool = (
            self.fire_pool_level
                .as_deref()
                .filter(|l| !l.trim().is_empty()),
            self.fire_pool_area_m2,
            self.fire_pool_height_m,
            self.fire_pool_dead_level_m,
            self.fire_pool_required_m3,
        );
        points.fire_pool = match pool {
            (None, None, None, None, None) => None,
            (Some(level), Some(area_m2), Some(height_m), Some(dead_level_m), Some(required)) => {
                Some(FirePool {
                    level: level.trim().to_owned(),
                    area_m2,
                    height_m,
                    dead_level_m,
                    required_volume_m3: required,
                })
            }
            _ => {
                return Err("the fire_pool_* columns are all given or all empty".into());
            }
        };
        Ok(points)
    }
}

fn yes(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "1" | "是"
    )
}

impl Registry {
    pub fn new(buildings: Vec<Building>) -> Result<Self, RegistryError> {
        let mut by_id = HashMap::new();
        for (i, b) in buildings.iter().enumerate() {
            if by_id.insert(b.id.clone(), i).is_some() {
                return Err(RegistryError::Invalid(format!(
                    "duplicate building id `{}`",
                    b.id
                )));
            }
            riser_contract::validate_gateway_id(&b.gateway)
                .map_err(|e| RegistryError::Invalid(format!("building `{}`: {e}", b.id)))?;
            let t = &b.tank;
            if !(t.area_m2 > 0.0 && t.height_m > 0.0 && (0.0..t.height_m).contains(&t.dead_level_m))
            {
                return Err(RegistryError::Invalid(format!(
                    "building `{}`: tank geometry must have area > 0 and 0 <= dead level < height",
                    b.id
                )));
            }
            if let Some(p) = &b.points.fire_pool
                && !(p.area_m2 > 0.0
                    && p.height_m > 0.0
                    && (0.0..p.height_m).contains(&p.dead_level_m)
                    && p.required_volume_m3 > 0.0
                    && !p.level.is_empty())
            {
                return Err(RegistryError::Invalid(format!(
                    "building `{}`: fire pool must name its level point and have area > 0, \
                     0 <= dead level < height and a required volume > 0",
                    b.id
                )));
            }
            if b.height_m.is_nan() || b.height_m <= 0.0 {
                return Err(RegistryError::Invalid(format!(
                    "building `{}`: height must be > 0",
                    b.id
                )));
            }
        }
        Ok(Self { buildings, by_id })
    }

    /// Loads `.toml` or `.csv` by extension.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: shown.clone(),
            source,
        })?;
        let parse = |message: String| RegistryError::Parse {
            path: shown.clone(),
            message,
        };
        let buildings = if path.extension().is_some_and(|e| e == "csv") {
            parse_csv(&text).map_err(parse)?
        } else {
            toml::from_str::<RegistryFile>(&text)
                .map_err(|e| parse(e.to_string()))?
                .building
        };
        Self::new(buildings)
    }

    pub fn buildings(&self) -> &[Building] {
        &self.buildings
    }

    pub fn get(&self, id: &str) -> Option<&Building> {
        self.by_id.get(id).map(|&i| &self.buildings[i])
    }

    /// Buildings read by `gateway`.
    pub fn by_gateway<'a>(&'a self, gateway: &'a str) -> impl Iterator<Item = &'a Building> + 'a {
        self.buildings.iter().filter(move |b| b.gateway == gateway)
    }

    pub fn gateways(&self) -> HashSet<&str> {
        self.buildings.iter().map(|b| b.gateway.as_str()).collect()
    }
}

/// Parses the district CSV; the error names the line.
/// A CSV cell: blank means absent.
fn non_empty(cell: Option<String>) -> Option<String> {
    cell.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty())
}

pub fn parse_csv(text: &str) -> Result<Vec<Building>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
        let row = row.map_err(|e| format!("line {}: {e}", i + 2))?;
        let points = row
            .point_map()
            .map_err(|e| format!("line {}: {e}", i + 2))?;
        out.push(Building {
            gateway: row.gateway.unwrap_or_else(|| format!("gw-{}", row.id)),
            id: row.id,
            name: row.name,
            district: row.district,
            town: row.town,
            community: row.community,
            address: non_empty(row.address),
            use_: row.use_,
            height_m: row.height_m,
            storeys: row.storeys,
            commercial_floor_over_1000m2: yes(&row.commercial_floor_over_1000m2),
            class: None,
            tank: Tank {
                area_m2: row.tank_area_m2,
                height_m: row.tank_height_m,
                dead_level_m: row.tank_dead_level_m,
            },
            jockey_pump: row.jockey_pump.as_deref().is_some_and(yes),
            points,
            parties: Parties {
                management_unit: non_empty(row.management_unit),
                contractor: non_empty(row.contractor),
                contractor_email: non_empty(row.contractor_email),
                building_manager: non_empty(row.building_manager),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_district_csv_loads_with_derived_classes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/buildings-liangping.csv");
        let registry = Registry::load(&path).unwrap();
        assert_eq!(registry.buildings().len(), 56);
        let first = registry.get("LP-001").unwrap();
        assert_eq!(first.gateway, "gw-LP-001");
        assert_eq!(first.class(), BuildingClass::ResidentialHighRiseI);
        assert_eq!(
            first.parties,
            Parties {
                management_unit: Some("梁平区社区自管（无物业）".into()),
                contractor: Some("梁平区鑫盾消防技术服务部".into()),
                contractor_email: Some("duty2@contractor.example.com".into()),
                building_manager: Some("楼栋长001".into()),
            }
        );
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let header = "id,name,district,town,community,compound,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m\n";
        let text = format!(
            "{header}A,a,d,t,c,x,residential,no,30,10,8,2,0.2\nB,b,d,t,c,x,residential,no,tall,10,8,2,0.2\n"
        );
        let err = parse_csv(&text).unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
    }

    #[test]
    fn impossible_tank_geometry_is_refused() {
        let mut b = parse_csv("id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m\nA,a,d,t,c,residential,no,30,10,8,2,0.2\n").unwrap();
        b[0].tank.dead_level_m = 3.0;
        assert!(matches!(Registry::new(b), Err(RegistryError::Invalid(_))));
    }

    const HEADER: &str = "id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m";

    #[test]
    fn csv_points_and_fire_pool_columns_are_optional() {
        let text = format!(
            "{HEADER},points,fire_pool_level,fire_pool_area_m2,fire_pool_height_m,fire_pool_dead_level_m,fire_pool_required_m3\n\
             A,a,d,t,c,residential,no,30,10,8,2,0.2,hydrant_pressure=hyd.p;panel_fault=,pool.level,60,4,0.3,216\n\
             B,b,d,t,c,residential,no,30,10,8,2,0.2,,,,,,\n"
        );
        let b = parse_csv(&text).unwrap();
        assert_eq!(b[0].points.hydrant_pressure, "hyd.p");
        assert_eq!(b[0].points.panel_fault, "");
        assert_eq!(b[0].points.tank_level, "tank.level");
        let pool = b[0].points.fire_pool.as_ref().unwrap();
        assert_eq!(
            (pool.level.as_str(), pool.required_volume_m3),
            ("pool.level", 216.0)
        );
        assert_eq!(b[1].points, PointMap::default());
        Registry::new(b).unwrap();
    }

    #[test]
    fn a_half_given_fire_pool_or_an_unknown_point_name_is_refused_by_line() {
        let pool = format!(
            "{HEADER},fire_pool_level,fire_pool_area_m2\nA,a,d,t,c,residential,no,30,10,8,2,0.2,pool.level,60\n"
        );
        let err = parse_csv(&pool).unwrap_err();
        assert!(
            err.starts_with("line 2:") && err.contains("fire_pool"),
            "{err}"
        );
        let points =
            format!("{HEADER},points\nA,a,d,t,c,residential,no,30,10,8,2,0.2,hydrant=hyd.p\n");
        let err = parse_csv(&points).unwrap_err();
        assert!(err.contains("no point named `hydrant`"), "{err}");
    }

    #[test]
    fn default_points_are_the_simulated_devices_names() {
        let p = PointMap::default();
        assert_eq!(p.fire_pump_auto, "pumps.fire_auto");
        assert_eq!(p.jockey_pump_starts, "pumps.jockey_starts");
        assert_eq!(p.panel_disabled, "panel.disabled");
        assert!(p.fire_pool.is_none());
    }

    #[test]
    fn the_example_toml_registry_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/registry.toml");
        let registry = Registry::load(&path).unwrap();
        let public = registry.get("LP-004").unwrap();
        assert_eq!(public.class(), BuildingClass::PublicHighRiseI);
        assert!(public.jockey_pump);
        assert_eq!(registry.by_gateway("gw-LP-001").count(), 1);
    }
}
