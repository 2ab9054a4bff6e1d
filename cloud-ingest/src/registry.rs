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

/// Which gateway point carries which quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointMap {
    /// Rooftop tank water level, m.
    pub tank_level: String,
    /// Static pressure at the most unfavourable point (最不利点), MPa.
    pub static_pressure: String,
}

impl Default for PointMap {
    fn default() -> Self {
        Self {
            tank_level: "tank.level".into(),
            static_pressure: "riser.pressure".into(),
        }
    }
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

/// A row of the district CSV (`data/buildings-liangping.csv`); extra columns
/// `gateway` (default `gw-{id}`) and `jockey_pump` (yes/no) are optional.
#[derive(Deserialize)]
struct CsvRow {
    id: String,
    name: String,
    district: String,
    town: String,
    community: String,
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
pub fn parse_csv(text: &str) -> Result<Vec<Building>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
        let row = row.map_err(|e| format!("line {}: {e}", i + 2))?;
        out.push(Building {
            gateway: row.gateway.unwrap_or_else(|| format!("gw-{}", row.id)),
            id: row.id,
            name: row.name,
            district: row.district,
            town: row.town,
            community: row.community,
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
            points: PointMap::default(),
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
