//! The words people read for a reason: Simplified Chinese by default,
//! English on request. Each names what was measured, what the clause
//! requires, the clause, and what to do.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::code::{CLAUSE_FACILITIES_INTACT, CLAUSE_NO_DISABLING, HYDRANT_REDUCER_MPA};
use super::{Code, Reason};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v}"))
}

fn time(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// The clause as the reader's language names it.
fn clause(reason: &Reason, lang: Lang) -> String {
    let clause = reason.clause.as_deref().unwrap_or("");
    match (lang, clause) {
        (Lang::En, CLAUSE_FACILITIES_INTACT) => "Fire Protection Law of the PRC, art. 16".into(),
        (Lang::En, CLAUSE_NO_DISABLING) => "Fire Protection Law of the PRC, art. 28".into(),
        (Lang::Zh, CLAUSE_FACILITIES_INTACT) => "《消防法》第十六条".into(),
        (Lang::Zh, CLAUSE_NO_DISABLING) => "《消防法》第二十八条".into(),
        _ => clause.into(),
    }
}

/// One sentence (or two) naming the point, the measured and the required
/// value, the clause, and what to do.
pub fn render(reason: &Reason, lang: Lang) -> String {
    let text = sentence(reason, lang);
    match (reason.current, lang) {
        (true, _) => text,
        (false, Lang::Zh) if is_hydrant(reason.code) => format!("{text}（上次消防泵运行时测得）"),
        (false, Lang::En) if is_hydrant(reason.code) => {
            format!("{text} (measured during the last fire-pump run)")
        }
        (false, Lang::Zh) => format!("{text}（最新读数已恢复，待确认）"),
        (false, Lang::En) => format!("{text} (the latest reading is back to normal; confirming)"),
    }
}

fn is_hydrant(code: Code) -> bool {
    matches!(code, Code::HydrantPressureLow | Code::HydrantPressureHigh)
}

fn sentence(reason: &Reason, lang: Lang) -> String {
    let point = reason.point.as_deref().unwrap_or("-");
    let value = num(reason.value);
    let required = num(reason.required);
    let clause = clause(reason, lang);
    let since = time(reason.since);
    let quality = reason.quality.map_or("?", |q| q.as_str());
    let hours = num(reason.hours);
    let reducer = HYDRANT_REDUCER_MPA;
    use Code::*;
    match (lang, reason.code) {
        (Lang::Zh, TankVolumeLow) => format!(
            "高位消防水箱有效容积 {value} m³，低于规范要求的 {required} m³（{clause}）；请立即检查补水阀和进水管路，尽快补水"
        ),
        (Lang::En, TankVolumeLow) => format!(
            "rooftop fire tank holds {value} m³ effective volume, below the required {required} m³ ({clause}); check the make-up valve and inlet and refill"
        ),
        (Lang::Zh, TankVolumeFalling) if reason.hours.is_some() => format!(
            "高位消防水箱有效容积 {value} m³ 持续下降，按当前趋势约 {hours} 小时后低于规范要求的 {required} m³（{clause}）；请检查补水阀、进水管路和是否漏水"
        ),
        (Lang::En, TankVolumeFalling) if reason.hours.is_some() => format!(
            "rooftop fire tank holds {value} m³ and keeps falling: below the required {required} m³ ({clause}) in about {hours} h; check the make-up valve, the inlet and for leaks"
        ),
        (Lang::Zh, TankVolumeFalling) => format!(
            "高位消防水箱有效容积 {value} m³ 曾持续下降，将低于规范要求的 {required} m³（{clause}）；请检查补水阀和进水管路"
        ),
        (Lang::En, TankVolumeFalling) => format!(
            "rooftop fire tank at {value} m³ was falling towards the required {required} m³ ({clause}); check the make-up valve and inlet"
        ),
        (Lang::Zh, FirePoolVolumeLow) => format!(
            "消防水池有效容积 {value} m³，低于设计要求的 {required} m³（{clause}）；请检查补水管路和浮球阀，尽快补水"
        ),
        (Lang::En, FirePoolVolumeLow) => format!(
            "fire pool holds {value} m³ effective volume, below the {required} m³ its design requires ({clause}); check the make-up supply and float valve and refill"
        ),
        (Lang::Zh, StaticPressureLow) => format!(
            "最不利点静水压力 {value} MPa，低于规范要求的 {required} MPa（{clause}）；请检查稳压泵、阀门和管网是否泄漏"
        ),
        (Lang::En, StaticPressureLow) => format!(
            "static pressure at the most unfavourable point is {value} MPa, below the required {required} MPa ({clause}); check the jockey pump, valves and pipes for leaks"
        ),
        (Lang::Zh, SprinklerPressureLow) => format!(
            "喷淋主管压力 {value} MPa，低于规范要求的 {required} MPa（{clause}）；请检查报警阀组、信号阀是否关闭及管网是否泄漏"
        ),
        (Lang::En, SprinklerPressureLow) => format!(
            "sprinkler main pressure is {value} MPa, below the required {required} MPa ({clause}); check the alarm valve set, closed signal valves and leaks"
        ),
        (Lang::Zh, HydrantPressureLow) => format!(
            "消防泵运行时室内消火栓栓口压力 {value} MPa，低于规范要求的 {required} MPa（{clause}）；请检查消防泵出力、出水阀门和管网"
        ),
        (Lang::En, HydrantPressureLow) => format!(
            "with a fire pump running the indoor hydrant outlet reads {value} MPa, below the required {required} MPa ({clause}); check the pump's output, its outlet valves and the pipes"
        ),
        (Lang::Zh, HydrantPressureHigh) => format!(
            "消防泵运行时室内消火栓栓口压力 {value} MPa，超过规范允许的 {required} MPa（{clause}；超过 {reducer} MPa 须设减压装置）；请检查减压阀或减压孔板"
        ),
        (Lang::En, HydrantPressureHigh) => format!(
            "with a fire pump running the indoor hydrant outlet reads {value} MPa, above the allowed {required} MPa ({clause}; above {reducer} MPa a pressure-reducing device is required); check the pressure-reducing valve or orifice"
        ),
        (Lang::Zh, FirePumpFault) => format!(
            "消防主泵故障（测点 {point}），火灾时可能无法启动，应保持完好有效（{clause}）；请维保单位立即到场检修，并确认备用泵处于自动"
        ),
        (Lang::En, FirePumpFault) => format!(
            "duty fire pump in fault (point {point}): it may not start in a fire; fire facilities must be kept working ({clause}); send the contractor now and make sure the standby pump is in auto"
        ),
        (Lang::Zh, FirePumpManual) => format!(
            "消防主泵控制柜处于手动状态（测点 {point}），规范要求平时处于自动启泵状态（{clause}）；请将控制柜转回自动"
        ),
        (Lang::En, FirePumpManual) => format!(
            "duty fire pump cabinet is in manual (point {point}); it must stand in automatic start ({clause}); switch the cabinet back to auto"
        ),
        (Lang::Zh, StandbyPumpFault) => format!(
            "消防备用泵故障（测点 {point}），主泵故障时将无泵可用，应保持完好有效（{clause}）；请安排检修"
        ),
        (Lang::En, StandbyPumpFault) => format!(
            "standby fire pump in fault (point {point}): nothing takes over if the duty pump fails; fire facilities must be kept working ({clause}); have it repaired"
        ),
        (Lang::Zh, StandbyPumpManual) => format!(
            "消防备用泵处于手动状态（测点 {point}），规范要求平时处于自动启泵状态（{clause}）；请转回自动"
        ),
        (Lang::En, StandbyPumpManual) => format!(
            "standby fire pump is in manual (point {point}); it must stand in automatic start ({clause}); switch it back to auto"
        ),
        (Lang::Zh, JockeyPumpFault) => format!(
            "稳压泵故障（测点 {point}），管网压力将无法维持，应保持完好有效（{clause}）；请安排检修"
        ),
        (Lang::En, JockeyPumpFault) => format!(
            "jockey pump in fault (point {point}): the network pressure will not be kept up; fire facilities must be kept working ({clause}); have it repaired"
        ),
        (Lang::Zh, JockeyPumpManual) => {
            format!("稳压泵处于手动状态（测点 {point}），应处于自动（{clause}）；请转回自动")
        }
        (Lang::En, JockeyPumpManual) => format!(
            "jockey pump is in manual (point {point}); it must stand in auto ({clause}); switch it back to auto"
        ),
        (Lang::Zh, JockeyPumpCycling) => format!(
            "稳压泵近一小时启动 {value} 次，超过规范的 {required} 次（{clause}）；频繁启停多为管网泄漏或气压罐失效，请检查管网、阀门和气压罐"
        ),
        (Lang::En, JockeyPumpCycling) => format!(
            "jockey pump started {value} times in the last hour, more than {required} ({clause}); frequent starts mean a leak or a failed pressure tank: check the pipes, valves and pressure tank"
        ),
        (Lang::Zh, PanelFault) => format!(
            "火灾报警控制器报故障（测点 {point}），应保持完好有效（{clause}）；请维保单位检修并排除故障"
        ),
        (Lang::En, PanelFault) => format!(
            "fire alarm panel reports a fault (point {point}); fire facilities must be kept working ({clause}); have the contractor clear it"
        ),
        (Lang::Zh, PanelDisabled) => format!(
            "火灾报警控制器有部件被屏蔽（测点 {point}），不得擅自停用消防设施（{clause}）；请核实原因并尽快解除屏蔽"
        ),
        (Lang::En, PanelDisabled) => format!(
            "fire alarm panel has points disabled (point {point}); fire facilities must not be switched off ({clause}); find out why and re-enable them"
        ),
        (Lang::Zh, PanelMainsFault) => format!(
            "火灾报警控制器主电故障（测点 {point}），正由备电供电（{clause}）；请尽快恢复主电"
        ),
        (Lang::En, PanelMainsFault) => format!(
            "fire alarm panel lost mains power (point {point}) and runs on its battery ({clause}); restore mains power"
        ),
        (Lang::Zh, PanelBackupFault) => format!(
            "火灾报警控制器备电故障（测点 {point}），停电时将无法工作（{clause}）；请检查或更换蓄电池"
        ),
        (Lang::En, PanelBackupFault) => format!(
            "fire alarm panel's backup power failed (point {point}): it will stop in a power cut ({clause}); check or replace the battery"
        ),
        (Lang::Zh, FireAlarm) => format!(
            "火灾报警控制器报火警（测点 {point}，自 {since}），火警信息优先传送（{clause}）；请立即现场核实，确认火灾立即拨打 119"
        ),
        (Lang::En, FireAlarm) => format!(
            "fire alarm on the panel (point {point}, since {since}); fire alarms are passed on first ({clause}); check on site at once and call 119 if there is a fire"
        ),
        (Lang::Zh, CannotVerify) if reason.quality.is_none() => format!(
            "无法核实：测点 {point} 读数 {value} 超出合理范围，请检查传感器、量程设置和接线"
        ),
        (Lang::En, CannotVerify) if reason.quality.is_none() => format!(
            "cannot verify: point {point} reads {value}, outside what it can plausibly read; check the sensor, its range setting and wiring"
        ),
        (Lang::Zh, CannotVerify) => {
            format!("无法核实：测点 {point} 数据质量为 {quality}，请检查传感器和接线")
        }
        (Lang::En, CannotVerify) => format!(
            "cannot verify: point {point} reads with quality {quality}; check the sensor and wiring"
        ),
        (Lang::Zh, NoData) => format!("测点 {point} 尚无数据"),
        (Lang::En, NoData) => format!("point {point} has not reported yet"),
        (Lang::Zh, PointStale) => format!("测点 {point} 自 {since} 起未更新"),
        (Lang::En, PointStale) => format!("point {point} has not updated since {since}"),
        (Lang::Zh, GatewayOffline) if reason.since.is_some() => {
            format!("网关离线（自 {since} 起无消息），无法获取实时数据")
        }
        (Lang::Zh, GatewayOffline) => "网关离线，无法获取实时数据".into(),
        (Lang::En, GatewayOffline) if reason.since.is_some() => {
            format!("gateway offline (nothing received since {since}); no live data")
        }
        (Lang::En, GatewayOffline) => "gateway offline; no live data".into(),
        (Lang::Zh, Maintenance) => format!(
            "维保模式至 {}，期间照常判定但不推送告警",
            time(reason.until)
        ),
        (Lang::En, Maintenance) => format!(
            "in maintenance mode until {}: still judged, nobody is paged",
            time(reason.until)
        ),
    }
}
