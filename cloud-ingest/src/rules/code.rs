//! The fire-code numbers (see `FIRE_CODES.md` in the design notes; all
//! marked [secondary] there: taken from exam notes and vendor pages quoting
//! the standard). Building classes per GB 50016, tank volumes per
//! GB 50974-2014 5.2.1, static pressures per 5.2.2.

use serde::{Deserialize, Serialize};

use crate::registry::Use;

pub const CLAUSE_TANK_VOLUME: &str = "GB 50974-2014 5.2.1";
pub const CLAUSE_STATIC_PRESSURE: &str = "GB 50974-2014 5.2.2";

/// Building class (GB 50016).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildingClass {
    /// 一类高层住宅: residential > 54 m.
    #[serde(rename = "residential_high_rise_i")]
    ResidentialHighRiseI,
    /// 二类高层住宅: residential > 27 m.
    #[serde(rename = "residential_high_rise_ii")]
    ResidentialHighRiseII,
    /// 多层住宅: residential ≤ 27 m.
    ResidentialMultiStorey,
    /// 一类高层公共建筑: public > 50 m, or > 24 m with a floor over 1000 m² of commerce.
    #[serde(rename = "public_high_rise_i")]
    PublicHighRiseI,
    /// 二类高层公共建筑: other public > 24 m.
    #[serde(rename = "public_high_rise_ii")]
    PublicHighRiseII,
    /// 多层公共建筑: public ≤ 24 m.
    PublicMultiStorey,
}

impl BuildingClass {
    pub fn derive(use_: Use, height_m: f64, commercial_floor_over_1000m2: bool) -> Self {
        match use_ {
            Use::Residential if height_m > 54.0 => Self::ResidentialHighRiseI,
            Use::Residential if height_m > 27.0 => Self::ResidentialHighRiseII,
            Use::Residential => Self::ResidentialMultiStorey,
            Use::Public if height_m > 50.0 || (height_m > 24.0 && commercial_floor_over_1000m2) => {
                Self::PublicHighRiseI
            }
            Use::Public if height_m > 24.0 => Self::PublicHighRiseII,
            Use::Public => Self::PublicMultiStorey,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Self::ResidentialHighRiseI => "一类高层住宅",
            Self::ResidentialHighRiseII => "二类高层住宅",
            Self::ResidentialMultiStorey => "多层住宅",
            Self::PublicHighRiseI => "一类高层公共建筑",
            Self::PublicHighRiseII => "二类高层公共建筑",
            Self::PublicMultiStorey => "多层公共建筑",
        }
    }
}

/// Minimum effective volume of the rooftop tank, m³ (5.2.1); `None` where
/// the clause asks for none (multi-storey residential up to 21 m).
pub fn required_tank_volume_m3(class: BuildingClass, height_m: f64) -> Option<f64> {
    use BuildingClass::*;
    match class {
        PublicHighRiseI if height_m > 150.0 => Some(100.0),
        PublicHighRiseI if height_m > 100.0 => Some(50.0),
        PublicHighRiseI => Some(36.0),
        ResidentialHighRiseI if height_m > 100.0 => Some(36.0),
        ResidentialHighRiseI | PublicHighRiseII | PublicMultiStorey => Some(18.0),
        ResidentialHighRiseII => Some(12.0),
        ResidentialMultiStorey if height_m > 21.0 => Some(6.0),
        ResidentialMultiStorey => None,
    }
}

/// Minimum static pressure at the most unfavourable point, MPa (5.2.2).
/// Where a jockey pump keeps the pressure instead of the tank, 0.15 MPa.
pub fn required_static_pressure_mpa(class: BuildingClass, height_m: f64, jockey_pump: bool) -> f64 {
    match class {
        _ if jockey_pump => 0.15,
        BuildingClass::PublicHighRiseI if height_m > 100.0 => 0.15,
        BuildingClass::PublicHighRiseI => 0.10,
        _ => 0.07,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildingClass::*;

    #[test]
    fn classes_follow_gb_50016_heights() {
        assert_eq!(
            BuildingClass::derive(Use::Residential, 54.0, false),
            ResidentialHighRiseII
        );
        assert_eq!(
            BuildingClass::derive(Use::Residential, 54.1, false),
            ResidentialHighRiseI
        );
        assert_eq!(
            BuildingClass::derive(Use::Residential, 27.0, false),
            ResidentialMultiStorey
        );
        assert_eq!(
            BuildingClass::derive(Use::Public, 30.0, true),
            PublicHighRiseI
        );
        assert_eq!(
            BuildingClass::derive(Use::Public, 30.0, false),
            PublicHighRiseII
        );
        assert_eq!(
            BuildingClass::derive(Use::Public, 50.1, false),
            PublicHighRiseI
        );
        assert_eq!(
            BuildingClass::derive(Use::Public, 24.0, true),
            PublicMultiStorey
        );
    }

    #[test]
    fn tank_volumes_follow_clause_5_2_1_class_by_class() {
        let cases = [
            (PublicHighRiseI, 60.0, Some(36.0)),
            (PublicHighRiseI, 120.0, Some(50.0)),
            (PublicHighRiseI, 160.0, Some(100.0)),
            (PublicHighRiseII, 40.0, Some(18.0)),
            (PublicMultiStorey, 20.0, Some(18.0)),
            (ResidentialHighRiseI, 80.0, Some(18.0)),
            (ResidentialHighRiseI, 101.0, Some(36.0)),
            (ResidentialHighRiseII, 40.0, Some(12.0)),
            (ResidentialMultiStorey, 24.0, Some(6.0)),
            (ResidentialMultiStorey, 18.0, None),
        ];
        for (class, height, expected) in cases {
            assert_eq!(
                required_tank_volume_m3(class, height),
                expected,
                "{class:?} {height} m"
            );
        }
    }

    #[test]
    fn static_pressures_follow_clause_5_2_2_class_by_class() {
        assert_eq!(
            required_static_pressure_mpa(PublicHighRiseI, 80.0, false),
            0.10
        );
        assert_eq!(
            required_static_pressure_mpa(PublicHighRiseI, 120.0, false),
            0.15
        );
        assert_eq!(
            required_static_pressure_mpa(PublicHighRiseII, 40.0, false),
            0.07
        );
        assert_eq!(
            required_static_pressure_mpa(ResidentialHighRiseI, 90.0, false),
            0.07
        );
        assert_eq!(
            required_static_pressure_mpa(ResidentialMultiStorey, 20.0, false),
            0.07
        );
        assert_eq!(
            required_static_pressure_mpa(ResidentialHighRiseII, 40.0, true),
            0.15
        );
    }
}
