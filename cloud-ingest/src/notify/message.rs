//! The words of an alert: a pure function from a hazard item, its
//! building and the transition to the subject, plain text, markdown (for
//! the 企业微信 and 钉钉 robots), JSON (for the generic webhook) and SMS
//! template parameters. Simplified Chinese by default, English on request.
//!
//! Every message names the building and where it is, what was measured
//! against what the code requires and the clause (the rules' own sentence,
//! [`crate::rules::render`], which also says what to do), since when, the
//! rectification deadline (限期整改), and the link that acknowledges it.

use serde_json::json;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::hazards::{Action, Hazard, Severity};
use crate::registry::Building;
use crate::rules::{Lang, render};

/// China Standard Time: people read local times.
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+8 is a valid offset"),
};

const LOCAL: &[FormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]");

/// A rendered alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub markdown: String,
    pub json: serde_json::Value,
    /// Aliyun SMS template parameters: `building`, `problem`, `deadline`.
    pub sms_params: Vec<(&'static str, String)>,
}

/// What happened to the item, as a person reads it.
fn happened(action: Action, escalation: u8, lang: Lang) -> &'static str {
    match (lang, action, escalation) {
        (Lang::Zh, Action::Opened, _) => "新发现隐患",
        (Lang::Zh, Action::Reopened, _) => "隐患再次出现",
        (Lang::Zh, Action::Escalated, 1) => "超时未确认，已升级督办",
        (Lang::Zh, Action::Escalated, _) => "逾期未整改，已挂牌督办",
        (Lang::Zh, Action::Resolved, _) => "隐患已消除，待销号",
        (Lang::Zh, _, _) => "隐患状态更新",
        (Lang::En, Action::Opened, _) => "new hazard",
        (Lang::En, Action::Reopened, _) => "hazard is back",
        (Lang::En, Action::Escalated, 1) => "not acknowledged in time: escalated",
        (Lang::En, Action::Escalated, _) => {
            "not rectified by its deadline: escalated to supervision"
        }
        (Lang::En, Action::Resolved, _) => "condition cleared; close the item",
        (Lang::En, _, _) => "hazard updated",
    }
}

fn severity_name(severity: Severity, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => severity.name_zh(),
        Lang::En => match severity {
            Severity::Urgent => "URGENT",
            Severity::General => "general",
            Severity::Monitoring => "monitoring lost",
        },
    }
}

fn local(t: OffsetDateTime) -> String {
    t.to_offset(CST).format(LOCAL).unwrap_or_default()
}

/// The alert for `action` on `hazard` of `building`; `link` acknowledges
/// it (none once acknowledged or resolved).
pub fn render_alert(
    hazard: &Hazard,
    building: &Building,
    action: Action,
    link: Option<&str>,
    lang: Lang,
) -> Rendered {
    let what = happened(action, hazard.escalation, lang);
    let severity = severity_name(hazard.severity, lang);
    let reason = render(&hazard.reason(), lang);
    let place = format!(
        "{}{}{}",
        building.district, building.town, building.community
    );
    let since = local(hazard.opened_at);
    let deadline = local(hazard.deadline);
    let subject = match lang {
        Lang::Zh => format!("【{severity}】{what}：{}（{place}）", building.name),
        Lang::En => format!("[{severity}] {what}: {} ({place})", building.name),
    };
    let (l_building, l_since, l_deadline, l_ack, l_id) = match lang {
        Lang::Zh => ("楼栋", "开始时间", "整改期限", "确认收到", "隐患编号"),
        Lang::En => ("Building", "Since", "Rectify by", "Acknowledge", "Item"),
    };
    let mut text = format!(
        "{subject}\n{l_building}：{} {place}\n{reason}\n{l_since}：{since}\n{l_deadline}：{deadline}\n{l_id}：{}",
        building.name, hazard.id
    );
    let mut markdown = format!(
        "**{subject}**\n\n> {l_building}：{} {place}\n\n{reason}\n\n- {l_since}：{since}\n- {l_deadline}：{deadline}\n- {l_id}：{}",
        building.name, hazard.id
    );
    if lang == Lang::En {
        text = text.replace('：', ": ");
        markdown = markdown.replace('：', ": ");
    }
    if let Some(link) = link {
        text.push_str(&format!("\n{l_ack}: {link}"));
        markdown.push_str(&format!("\n\n[{l_ack}]({link})"));
    }
    let json = json!({
        "hazard_id": hazard.id,
        "action": action.as_str(),
        "escalation": hazard.escalation,
        "severity": hazard.severity.as_str(),
        "state": hazard.state.as_str(),
        "code": hazard.code,
        "point": hazard.point,
        "value": hazard.value,
        "required": hazard.required,
        "clause": hazard.clause,
        "building": {
            "id": building.id,
            "name": building.name,
            "district": building.district,
            "town": building.town,
            "community": building.community,
        },
        "opened_at": hazard.opened_at.unix_timestamp(),
        "deadline": hazard.deadline.unix_timestamp(),
        "subject": subject,
        "text": reason,
        "acknowledge_url": link,
    });
    let sms_params = vec![
        ("building", building.name.clone()),
        ("problem", what.to_owned()),
        ("deadline", deadline.clone()),
    ];
    Rendered {
        subject,
        text,
        markdown,
        json,
        sms_params,
    }
}

/// One item of a digest.
pub struct DigestItem<'a> {
    pub hazard: Hazard,
    pub building: &'a Building,
    pub action: Action,
    /// The escalation step the item's notification was about.
    pub escalation: u8,
    /// Its acknowledge link, if it still takes one.
    pub link: Option<String>,
}

/// Items a digest lists one by one; the rest are counted.
pub const DIGEST_LISTED: usize = 50;

/// Markdown longer than this is cut (企业微信 robots take 4 096 bytes).
const MARKDOWN_BYTES: usize = 3_800;

/// A digest to `party` of `items` (rate-limited: more items than the
/// recipient may be sent one by one), urgent first.
pub fn render_digest(party: &str, items: &[DigestItem<'_>], lang: Lang) -> Rendered {
    let mut order: Vec<&DigestItem<'_>> = items.iter().collect();
    order.sort_by_key(|i| (i.hazard.severity != Severity::Urgent, i.hazard.id));
    let urgent = items
        .iter()
        .filter(|i| i.hazard.severity == Severity::Urgent)
        .count();
    let buildings = {
        let mut ids: Vec<&str> = items.iter().map(|i| i.building.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let n = items.len();
    let subject = match lang {
        Lang::Zh => {
            format!("【汇总】{party}：{buildings} 栋楼 {n} 项隐患变化（其中紧急 {urgent} 项）")
        }
        Lang::En => format!(
            "[digest] {party}: {n} hazard changes in {buildings} buildings ({urgent} urgent)"
        ),
    };
    let intro = match lang {
        Lang::Zh => "短时间内隐患变化较多，合并为本条汇总，请逐项处理：",
        Lang::En => "Many hazards changed in a short time; they are listed here together:",
    };
    let mut text = format!("{subject}\n{intro}");
    let mut markdown = format!("**{subject}**\n\n{intro}\n");
    let mut cut = false;
    for (k, item) in order.iter().take(DIGEST_LISTED).enumerate() {
        let h = &item.hazard;
        let what = happened(item.action, item.escalation, lang);
        let severity = severity_name(h.severity, lang);
        let name = &item.building.name;
        let reason = render(&h.reason(), lang);
        let (l_id, l_ack) = match lang {
            Lang::Zh => ("编号", "确认收到"),
            Lang::En => ("item", "acknowledge"),
        };
        text.push_str(&format!(
            "\n{}. [{severity}] {name}: {what}. {reason} ({l_id} {})",
            k + 1,
            h.id
        ));
        if let Some(link) = &item.link {
            text.push_str(&format!(" {l_ack}: {link}"));
        }
        let mut line = match lang {
            Lang::Zh => format!("\n- **{severity}** {name}：{what}（{l_id} {}）", h.id),
            Lang::En => format!("\n- **{severity}** {name}: {what} ({l_id} {})", h.id),
        };
        if let Some(link) = &item.link {
            line.push_str(&format!(" [{l_ack}]({link})"));
        }
        if !cut && markdown.len() + line.len() < MARKDOWN_BYTES {
            markdown.push_str(&line);
        } else {
            cut = true;
        }
    }
    let listed_md = markdown.matches("\n- ").count();
    let more = |listed: usize| match lang {
        Lang::Zh => format!("……另有 {} 项，请登录平台查看。", n - listed),
        Lang::En => format!("… and {} more: see the dashboard.", n - listed),
    };
    if n > DIGEST_LISTED {
        text.push_str(&format!("\n{}", more(DIGEST_LISTED)));
    }
    if n > listed_md {
        markdown.push_str(&format!("\n\n{}", more(listed_md)));
    }
    let json = json!({
        "digest": true,
        "party": party,
        "subject": subject,
        "items": order.iter().map(|i| json!({
            "hazard_id": i.hazard.id,
            "action": i.action.as_str(),
            "escalation": i.escalation,
            "severity": i.hazard.severity.as_str(),
            "state": i.hazard.state.as_str(),
            "code": i.hazard.code,
            "point": i.hazard.point,
            "value": i.hazard.value,
            "required": i.hazard.required,
            "clause": i.hazard.clause,
            "building": { "id": i.building.id, "name": i.building.name },
            "acknowledge_url": i.link,
        })).collect::<Vec<_>>(),
    });
    let first = order
        .first()
        .map_or(String::new(), |i| i.building.name.clone());
    let deadline = order
        .iter()
        .map(|i| i.hazard.deadline)
        .min()
        .map(local)
        .unwrap_or_default();
    let sms_params = vec![
        (
            "building",
            match lang {
                Lang::Zh if buildings > 1 => format!("{first}等{buildings}栋楼"),
                Lang::En if buildings > 1 => format!("{first} and {} more", buildings - 1),
                _ => first,
            },
        ),
        (
            "problem",
            match lang {
                Lang::Zh => format!("{n}项隐患变化"),
                Lang::En => format!("{n} hazard changes"),
            },
        ),
        ("deadline", deadline),
    ];
    Rendered {
        subject,
        text,
        markdown,
        json,
        sms_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hazards::State;
    use crate::registry::parse_csv;
    use crate::rules::Code;
    use time::macros::datetime;

    fn building() -> Building {
        parse_csv("id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m\nLP-001,西城御景1栋,梁平区,梁山街道,西平社区,residential,no,98.9,33,8,3.16,0.2\n")
            .unwrap()
            .remove(0)
    }

    fn hazard() -> Hazard {
        let opened = datetime!(2026-11-23 01:30 UTC);
        Hazard {
            id: 42,
            building_id: "LP-001".into(),
            code: Code::TankVolumeLow,
            point: Some("tank.level".into()),
            severity: Severity::Urgent,
            clause: Some("GB 50974-2014 5.2.1".into()),
            quality: None,
            state: State::Open,
            value: Some(6.4),
            required: Some(18.0),
            opened_at: opened,
            recorded_at: opened,
            ack_due: opened + time::Duration::minutes(30),
            deadline: opened + time::Duration::hours(24),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            closed_at: None,
            closed_by: None,
            closed_remark: None,
            escalation: 0,
            escalated_at: None,
            last_seen_at: opened,
            reopened: 0,
        }
    }

    #[test]
    fn a_new_urgent_item_names_building_values_clause_times_and_the_link() {
        let m = render_alert(
            &hazard(),
            &building(),
            Action::Opened,
            Some("https://riser.example/ack/t0k3n"),
            Lang::Zh,
        );
        assert_eq!(
            m.subject,
            "【紧急】新发现隐患：西城御景1栋（梁平区梁山街道西平社区）"
        );
        for part in [
            "6.4",
            "18",
            "GB 50974-2014 5.2.1",
            "开始时间：2026-11-23 09:30",
            "整改期限：2026-11-24 09:30",
            "隐患编号：42",
            "https://riser.example/ack/t0k3n",
        ] {
            assert!(m.text.contains(part), "{part} in {}", m.text);
            assert!(m.markdown.contains(part), "{part} in {}", m.markdown);
        }
        assert_eq!(m.json["hazard_id"], 42);
        assert_eq!(m.json["building"]["name"], "西城御景1栋");
        assert_eq!(m.sms_params[0], ("building", "西城御景1栋".to_owned()));
    }

    #[test]
    fn escalation_says_which_step_it_is() {
        let mut h = hazard();
        h.escalation = 2;
        let m = render_alert(&h, &building(), Action::Escalated, None, Lang::Zh);
        assert!(
            m.subject.contains("逾期未整改，已挂牌督办"),
            "{}",
            m.subject
        );
        assert!(!m.text.contains("确认收到"), "no link, no prompt");
    }

    #[test]
    fn a_digest_lists_urgent_items_first_and_stays_within_a_robots_limit() {
        let b = building();
        let items: Vec<DigestItem<'_>> = (0..300)
            .map(|k| {
                let mut h = hazard();
                h.id = 1000 + k;
                h.severity = if k % 100 == 99 {
                    Severity::Urgent
                } else {
                    Severity::General
                };
                DigestItem {
                    hazard: h,
                    building: &b,
                    action: Action::Opened,
                    escalation: 0,
                    link: Some(format!("https://riser.example/ack/{k}.token")),
                }
            })
            .collect();
        let m = render_digest("城东维保", &items, Lang::Zh);
        assert_eq!(
            m.subject,
            "【汇总】城东维保：1 栋楼 300 项隐患变化（其中紧急 3 项）"
        );
        assert!(m.markdown.len() < 4096, "{}", m.markdown.len());
        let first = m.text.lines().nth(2).unwrap();
        assert!(first.starts_with("1. [紧急] 西城御景1栋"), "{first}");
        assert!(first.contains("编号 1099"), "{first}");
        assert!(m.text.contains("……另有 250 项"), "{}", m.text);
        assert!(m.markdown.contains("项，请登录平台查看"), "{}", m.markdown);
        assert_eq!(m.json["items"].as_array().unwrap().len(), 300);
        assert_eq!(m.sms_params[1], ("problem", "300项隐患变化".to_owned()));
    }

    #[test]
    fn english_is_available() {
        let m = render_alert(&hazard(), &building(), Action::Opened, None, Lang::En);
        assert!(
            m.subject.starts_with("[URGENT] new hazard: "),
            "{}",
            m.subject
        );
        assert!(
            m.text.contains("Rectify by: 2026-11-24 09:30"),
            "{}",
            m.text
        );
        assert!(!m.text.contains('：'), "{}", m.text);
    }
}
