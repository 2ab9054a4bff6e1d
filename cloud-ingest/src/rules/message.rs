//! The words people read for a reason: Simplified Chinese by default, English on request.

use serde::Deserialize;

use super::{Code, Reason};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v}"))
}

/// One sentence naming the point, the measured and the required value and the clause.
pub fn render(reason: &Reason, lang: Lang) -> String {
    let point = reason.point.as_deref().unwrap_or("-");
    let value = num(reason.value);
    let required = num(reason.required);
    let clause = reason.clause.as_deref().unwrap_or("");
    let quality = reason.quality.map_or("?", |q| q.as_str());
    let since = reason
        .since
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    match (lang, reason.code) {
        (Lang::Zh, Code::TankVolumeLow) => format!(
            "高位消防水箱有效容积 {value} m³，低于规范要求的 {required} m³（{clause}）；请立即检查补水阀和进水管路，尽快补水"
        ),
        (Lang::En, Code::TankVolumeLow) => format!(
            "rooftop fire tank holds {value} m³ effective volume, below the required {required} m³ ({clause}); check the make-up valve and inlet and refill"
        ),
        (Lang::Zh, Code::StaticPressureLow) => format!(
            "最不利点静水压力 {value} MPa，低于规范要求的 {required} MPa（{clause}）；请检查稳压泵、阀门和管网是否泄漏"
        ),
        (Lang::En, Code::StaticPressureLow) => format!(
            "static pressure at the most unfavourable point is {value} MPa, below the required {required} MPa ({clause}); check the jockey pump, valves and pipes for leaks"
        ),
        (Lang::Zh, Code::CannotVerify) => {
            format!("无法核实：测点 {point} 数据质量为 {quality}，请检查传感器和接线")
        }
        (Lang::En, Code::CannotVerify) => {
            format!(
                "cannot verify: point {point} reads with quality {quality}; check the sensor and wiring"
            )
        }
        (Lang::Zh, Code::NoData) => format!("测点 {point} 尚无数据"),
        (Lang::En, Code::NoData) => format!("point {point} has not reported yet"),
        (Lang::Zh, Code::PointStale) => format!("测点 {point} 自 {since} 起未更新"),
        (Lang::En, Code::PointStale) => format!("point {point} has not updated since {since}"),
        (Lang::Zh, Code::GatewayOffline) => "网关离线，无法获取实时数据".into(),
        (Lang::En, Code::GatewayOffline) => "gateway offline; no live data".into(),
    }
}
