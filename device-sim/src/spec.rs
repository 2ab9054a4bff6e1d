//! What a simulated building is: its geometry and class, read from the
//! district CSV (`data/buildings-liangping.csv`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Static pressure per metre of water column, MPa/m.
pub const MPA_PER_M: f64 = 0.0098;

/// How far below the tank's inner height the float valve shuts, m.
pub const FREEBOARD_M: f64 = 0.1;

/// Building use, which decides the fire-code class together with height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// 住宅.
    Residential,
    /// 公共建筑.
    Public,
}

/// One simulated building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildingSpec {
    /// Building id, e.g. `LP-001`.
    pub id: String,
    /// Name (小区 + 栋).
    pub name: String,
    /// Residential or public.
    #[serde(rename = "use")]
    pub use_: Use,
    /// Public buildings: a floor above 24 m has over 1000 m² of commercial use.
    pub commercial_floor_over_1000m2: bool,
    /// Building height, m.
    pub height_m: f64,
    /// Storeys above ground.
    pub storeys: u32,
    /// Rooftop tank cross-section, m².
    pub tank_area_m2: f64,
    /// Rooftop tank inner height, m.
    pub tank_height_m: f64,
    /// Level below which water cannot be drawn, m.
    pub tank_dead_level_m: f64,
    /// Height of the tank bottom above the most unfavourable hydrant outlet, m.
    pub tank_bottom_above_top_outlet_m: f64,
    /// Whether a jockey pump (稳压泵) keeps the pressure up; not a CSV column.
    pub jockey_pump: bool,
}

impl BuildingSpec {
    /// A typical building for tests and examples: 40 m residential
    /// (二类高层住宅: 12 m³, 0.07 MPa), an 8 m² × 2.5 m tank with 0.2 m dead
    /// level (17.6 m³ when full), its bottom 6 m above the top outlet (the
    /// full column gives 0.0098 × (6 + 2.4) ≈ 0.082 MPa), no jockey pump.
    pub fn example(id: &str) -> Self {
        Self {
            id: id.into(),
            name: format!("示例{id}栋"),
            use_: Use::Residential,
            commercial_floor_over_1000m2: false,
            height_m: 40.0,
            storeys: 13,
            tank_area_m2: 8.0,
            tank_height_m: 2.5,
            tank_dead_level_m: 0.2,
            tank_bottom_above_top_outlet_m: 6.0,
            jockey_pump: false,
        }
    }

    /// The level the float valve keeps: just below the overflow.
    pub fn normal_level_m(&self) -> f64 {
        (self.tank_height_m - FREEBOARD_M).max(0.0)
    }

    /// Static pressure at the most unfavourable point from the water column alone.
    pub fn column_pressure_mpa(&self, level_m: f64) -> f64 {
        MPA_PER_M * (self.tank_bottom_above_top_outlet_m + level_m)
    }
}

/// Errors reading the district CSV.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: csv::Error },
    #[error("{path}, building {id}: {message}")]
    Invalid {
        path: PathBuf,
        id: String,
        message: String,
    },
}

/// Minimum static pressure at the most unfavourable point (GB 50974-2014
/// 5.2.2): 0.10 MPa for 一类高层公共建筑 (0.15 MPa above 100 m), 0.07 MPa
/// for everything else.
pub fn min_static_pressure_mpa(
    use_: Use,
    height_m: f64,
    commercial_floor_over_1000m2: bool,
) -> f64 {
    let class_one_public = use_ == Use::Public
        && (height_m > 50.0 || (height_m > 24.0 && commercial_floor_over_1000m2));
    match (class_one_public, height_m > 100.0) {
        (true, true) => 0.15,
        (true, false) => 0.10,
        (false, _) => 0.07,
    }
}

/// Whether the full tank's water column falls short of the required static
/// pressure, so that the code demands a jockey pump. Ignores `spec.jockey_pump`.
pub fn needs_jockey_pump(spec: &BuildingSpec) -> bool {
    let column = spec.column_pressure_mpa(spec.normal_level_m());
    column < min_static_pressure_mpa(spec.use_, spec.height_m, spec.commercial_floor_over_1000m2)
}

#[derive(Debug, Deserialize)]
struct Row {
    id: String,
    name: String,
    #[serde(rename = "use")]
    use_: Use,
    commercial_floor_over_1000m2: String,
    height_m: f64,
    storeys: u32,
    tank_area_m2: f64,
    tank_height_m: f64,
    tank_dead_level_m: f64,
    tank_bottom_above_top_outlet_m: f64,
}

fn yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

fn spec_of(row: Row) -> Result<BuildingSpec, String> {
    let commercial = yes_no(&row.commercial_floor_over_1000m2).ok_or_else(|| {
        format!(
            "commercial_floor_over_1000m2 must be yes or no, not {:?}",
            row.commercial_floor_over_1000m2
        )
    })?;
    let dimensions = [
        ("height_m", row.height_m),
        ("tank_area_m2", row.tank_area_m2),
        ("tank_height_m", row.tank_height_m),
        ("tank_dead_level_m", row.tank_dead_level_m),
        (
            "tank_bottom_above_top_outlet_m",
            row.tank_bottom_above_top_outlet_m,
        ),
    ];
    if let Some((column, value)) = dimensions.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
        return Err(format!(
            "{column} must be a non-negative number, not {value}"
        ));
    }
    if row.tank_dead_level_m >= row.tank_height_m {
        return Err("tank_dead_level_m must be below tank_height_m".into());
    }
    let mut spec = BuildingSpec {
        id: row.id,
        name: row.name,
        use_: row.use_,
        commercial_floor_over_1000m2: commercial,
        height_m: row.height_m,
        storeys: row.storeys,
        tank_area_m2: row.tank_area_m2,
        tank_height_m: row.tank_height_m,
        tank_dead_level_m: row.tank_dead_level_m,
        tank_bottom_above_top_outlet_m: row.tank_bottom_above_top_outlet_m,
        jockey_pump: false,
    };
    spec.jockey_pump = needs_jockey_pump(&spec);
    Ok(spec)
}

/// Reads the district CSV; columns the simulator does not need are ignored.
/// A building gets a jockey pump exactly when [`needs_jockey_pump`] says so.
pub fn load_csv(path: impl AsRef<Path>) -> Result<Vec<BuildingSpec>, SpecError> {
    let path = path.as_ref();
    let read_error = |source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(read_error)?;
    let mut specs = Vec::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(read_error)?;
        let id = row.id.clone();
        let spec = spec_of(row).map_err(|message| SpecError::Invalid {
            path: path.to_path_buf(),
            id,
            message,
        })?;
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/buildings-liangping.csv"
    );

    fn write_csv(body: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), body).unwrap();
        file
    }

    const HEADER: &str = "id,name,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,\
        tank_height_m,tank_dead_level_m,tank_bottom_above_top_outlet_m,contractor\n";

    #[test]
    fn the_sample_district_loads_all_56_buildings() {
        let specs = load_csv(SAMPLE).unwrap();
        assert_eq!(specs.len(), 56);
        let first = &specs[0];
        assert_eq!(first.id, "LP-001");
        assert_eq!(first.use_, Use::Residential);
        assert!((first.tank_height_m - 3.16).abs() < 1e-9);
        assert!(
            specs
                .iter()
                .any(|s| s.use_ == Use::Public && s.commercial_floor_over_1000m2)
        );
    }

    #[test]
    fn buildings_whose_column_falls_short_get_a_jockey_pump() {
        let specs = load_csv(SAMPLE).unwrap();
        let with_pump: Vec<&str> = specs
            .iter()
            .filter(|s| s.jockey_pump)
            .map(|s| s.id.as_str())
            .collect();
        assert!(with_pump.contains(&"LP-002"), "{with_pump:?}");
        assert!(!with_pump.contains(&"LP-001"), "{with_pump:?}");
        for spec in &specs {
            assert_eq!(spec.jockey_pump, needs_jockey_pump(spec), "{}", spec.id);
        }
    }

    #[test]
    fn class_one_public_buildings_need_more_pressure() {
        assert_eq!(
            min_static_pressure_mpa(Use::Residential, 120.0, false),
            0.07
        );
        assert_eq!(min_static_pressure_mpa(Use::Public, 40.0, false), 0.07);
        assert_eq!(min_static_pressure_mpa(Use::Public, 40.0, true), 0.10);
        assert_eq!(min_static_pressure_mpa(Use::Public, 60.0, false), 0.10);
        assert_eq!(min_static_pressure_mpa(Use::Public, 101.0, false), 0.15);
    }

    #[test]
    fn extra_columns_are_ignored_and_yes_no_is_parsed() {
        let file = write_csv(&format!(
            "{HEADER}X-1,甲1栋,public,yes,30,9,6,2,0.2,5,somebody\n"
        ));
        let specs = load_csv(file.path()).unwrap();
        assert!(specs[0].commercial_floor_over_1000m2);
        // 0.0098 × (5 + 1.9) ≈ 0.068 < 0.10 for a 一类 public building.
        assert!(specs[0].jockey_pump);
    }

    #[test]
    fn a_bad_yes_no_value_names_the_building_and_column() {
        let file = write_csv(&format!(
            "{HEADER}X-2,乙1栋,public,maybe,30,9,6,2,0.2,5,somebody\n"
        ));
        let message = load_csv(file.path()).unwrap_err().to_string();
        assert!(
            message.contains("X-2") && message.contains("commercial_floor_over_1000m2"),
            "{message}"
        );
    }

    #[test]
    fn a_dead_level_above_the_tank_is_rejected() {
        let file = write_csv(&format!(
            "{HEADER}X-3,丙1栋,residential,no,30,9,6,2,2.5,5,somebody\n"
        ));
        assert!(matches!(
            load_csv(file.path()),
            Err(SpecError::Invalid { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        assert!(matches!(
            load_csv("/nonexistent/buildings.csv"),
            Err(SpecError::Read { .. })
        ));
    }
}
