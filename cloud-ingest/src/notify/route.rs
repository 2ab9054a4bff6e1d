//! Who hears of a hazard transition: pure functions from the building's
//! responsible parties (registry), the transition and the routing and
//! contact config to a list of recipients.
//!
//! The work plans name three parties for every building (逐栋明确): the
//! maintenance contractor (维保单位), the management unit (管理单位 / 物业)
//! and the building manager (楼栋长); the district fire-rescue brigade
//! (消防救援) supervises (挂牌督办). An item opens to the roles its severity
//! names; unacknowledged past its window (escalation level 1) it also goes
//! to the management unit; unresolved past its deadline (level 2) also to
//! fire rescue. Each step is told to everyone up the chain so far, so the
//! contractor hears that its item was escalated.

use serde::{Deserialize, Serialize};

use crate::hazards::{Action, Severity};
use crate::registry::Building;

use super::channel::Target;

/// A role that answers for a building.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 维保单位
    Contractor,
    /// 楼栋长
    BuildingManager,
    /// 管理单位 / 物业
    ManagementUnit,
    /// 消防救援, the district's supervisor.
    FireRescue,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contractor => "contractor",
            Self::BuildingManager => "building_manager",
            Self::ManagementUnit => "management_unit",
            Self::FireRescue => "fire_rescue",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Contractor => "维保单位",
            Self::BuildingManager => "楼栋长",
            Self::ManagementUnit => "管理单位",
            Self::FireRescue => "消防救援",
        }
    }
}

/// Roles per severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BySeverity {
    pub urgent: Vec<Role>,
    pub general: Vec<Role>,
    pub monitoring: Vec<Role>,
}

impl BySeverity {
    pub fn get(&self, severity: Severity) -> &[Role] {
        match severity {
            Severity::Urgent => &self.urgent,
            Severity::General => &self.general,
            Severity::Monitoring => &self.monitoring,
        }
    }
}

/// Which roles hear of which transition (`[notify.routing]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Told when an item opens or reopens, per severity.
    pub opened: BySeverity,
    /// Added when an item is still unacknowledged past its window
    /// (escalation level 1).
    pub unacknowledged: Vec<Role>,
    /// Added when an item is not resolved by its deadline (level 2).
    pub overdue: Vec<Role>,
    /// Whether those told of an item hear that its condition cleared.
    pub resolved: bool,
}

impl Default for RoutingConfig {
    /// Urgent items reach the contractor and the building manager at
    /// once; general and monitoring items the contractor. Unacknowledged:
    /// the management unit too; overdue: fire rescue too.
    fn default() -> Self {
        Self {
            opened: BySeverity {
                urgent: vec![Role::Contractor, Role::BuildingManager],
                general: vec![Role::Contractor],
                monitoring: vec![Role::Contractor],
            },
            unacknowledged: vec![Role::ManagementUnit],
            overdue: vec![Role::FireRescue],
            resolved: true,
        }
    }
}

/// A party's contacts (`[[notify.party]]`), found by the name the
/// registry gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub name: String,
    /// Where its messages go.
    pub targets: Vec<Target>,
    /// The language its messages are written in.
    #[serde(default)]
    pub lang: crate::rules::Lang,
}

/// A district's fire-rescue supervisor (`[[notify.fire_rescue]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FireRescue {
    /// 区/县, as in the registry.
    pub district: String,
    pub name: String,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub lang: crate::rules::Lang,
}

/// Every contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Contacts {
    pub party: Vec<Party>,
    pub fire_rescue: Vec<FireRescue>,
}

/// One address that is to receive one message about a transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipient {
    pub role: Role,
    /// The party's name (the registry's, or the fire-rescue unit's).
    pub party: String,
    pub target: Target,
    pub lang: crate::rules::Lang,
}

impl Recipient {
    /// What identifies it across transitions (rate limits, digests, the
    /// outbox's one-message-per-transition rule): role, party, channel and
    /// a SHA-256 of the address (robot URLs carry credentials, which the
    /// key must not).
    pub fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let channel = self.target.channel();
        let address = serde_json::to_string(&self.target).unwrap_or_default();
        let digest = Sha256::digest(address.as_bytes());
        format!(
            "{}|{}|{}|{}",
            self.role.as_str(),
            self.party,
            channel.as_str(),
            hex::encode(&digest[..12])
        )
    }
}

/// The roles to tell of `action` on an item of `severity` that has
/// reached `escalation` (0-2).
pub fn roles(
    config: &RoutingConfig,
    severity: Severity,
    action: Action,
    escalation: u8,
) -> Vec<Role> {
    let mut roles: Vec<Role> = match action {
        Action::Opened | Action::Reopened | Action::Escalated => {
            config.opened.get(severity).to_vec()
        }
        Action::Resolved if config.resolved => config.opened.get(severity).to_vec(),
        // People's own steps (acknowledge, remark, close) and a resolution
        // nobody asked to hear of page no one.
        _ => return Vec::new(),
    };
    if escalation >= 1 {
        roles.extend(&config.unacknowledged);
    }
    if escalation >= 2 {
        roles.extend(&config.overdue);
    }
    roles.sort();
    roles.dedup();
    roles
}

/// The addresses of `roles` for `building`: each party's configured
/// targets; the contractor's duty e-mail from the registry when its party
/// has none configured. A role whose party is unnamed or has no contact
/// is returned in the second list (to be logged and shown: an alert
/// nobody can receive).
pub fn recipients(
    building: &Building,
    roles: &[Role],
    contacts: &Contacts,
) -> (Vec<Recipient>, Vec<Role>) {
    let mut found = Vec::new();
    let mut unreachable = Vec::new();
    for &role in roles {
        let before = found.len();
        let parties = &building.parties;
        match role {
            Role::FireRescue => {
                for unit in contacts
                    .fire_rescue
                    .iter()
                    .filter(|f| f.district == building.district)
                {
                    found.extend(unit.targets.iter().map(|t| Recipient {
                        role,
                        party: unit.name.clone(),
                        target: t.clone(),
                        lang: unit.lang,
                    }));
                }
            }
            _ => {
                let name = match role {
                    Role::Contractor => parties.contractor.as_deref(),
                    Role::BuildingManager => parties.building_manager.as_deref(),
                    Role::ManagementUnit => parties.management_unit.as_deref(),
                    Role::FireRescue => unreachable!("handled above"),
                };
                if let Some(name) = name {
                    let party = contacts.party.iter().find(|p| p.name == name);
                    match party {
                        Some(p) if !p.targets.is_empty() => {
                            found.extend(p.targets.iter().map(|t| Recipient {
                                role,
                                party: name.to_owned(),
                                target: t.clone(),
                                lang: p.lang,
                            }));
                        }
                        _ => {
                            if role == Role::Contractor
                                && let Some(to) = &parties.contractor_email
                            {
                                found.push(Recipient {
                                    role,
                                    party: name.to_owned(),
                                    target: Target::Email { to: to.clone() },
                                    lang: party.map(|p| p.lang).unwrap_or_default(),
                                });
                            }
                        }
                    }
                }
            }
        }
        if found.len() == before {
            unreachable.push(role);
        }
    }
    // One message per address even if it serves several roles.
    let mut seen = std::collections::HashSet::new();
    found.retain(|r| seen.insert(serde_json::to_string(&r.target).unwrap_or_default()));
    (found, unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Parties, parse_csv};

    fn building() -> Building {
        let mut b = parse_csv("id,name,district,town,community,use,commercial_floor_over_1000m2,height_m,storeys,tank_area_m2,tank_height_m,tank_dead_level_m\nB1,一号楼,梁平区,梁山街道,西平社区,residential,no,60,20,8,2.5,0.2\n")
            .unwrap()
            .remove(0);
        b.parties = Parties {
            management_unit: Some("嘉禾物业".into()),
            contractor: Some("安泰维保".into()),
            contractor_email: Some("duty@antai.example".into()),
            building_manager: Some("楼栋长001".into()),
        };
        b
    }

    fn wecom(url: &str) -> Target {
        Target::WeCom { url: url.into() }
    }

    fn contacts() -> Contacts {
        Contacts {
            party: vec![
                Party {
                    name: "安泰维保".into(),
                    targets: vec![wecom("https://qyapi.example/antai")],
                    lang: Default::default(),
                },
                Party {
                    name: "嘉禾物业".into(),
                    targets: vec![Target::Sms {
                        phone: "+8613800000001".into(),
                    }],
                    lang: crate::rules::Lang::En,
                },
            ],
            fire_rescue: vec![
                FireRescue {
                    district: "梁平区".into(),
                    name: "梁平区消防救援大队".into(),
                    targets: vec![wecom("https://qyapi.example/119")],
                    lang: Default::default(),
                },
                FireRescue {
                    district: "万州区".into(),
                    name: "万州区消防救援支队".into(),
                    targets: vec![wecom("https://qyapi.example/wz")],
                    lang: Default::default(),
                },
            ],
        }
    }

    #[test]
    fn an_urgent_item_opens_to_the_contractor_and_the_building_manager() {
        let config = RoutingConfig::default();
        assert_eq!(
            roles(&config, Severity::Urgent, Action::Opened, 0),
            [Role::Contractor, Role::BuildingManager]
        );
        assert_eq!(
            roles(&config, Severity::General, Action::Opened, 0),
            [Role::Contractor]
        );
    }

    #[test]
    fn escalation_climbs_the_chain_and_keeps_those_below_told() {
        let config = RoutingConfig::default();
        assert_eq!(
            roles(&config, Severity::General, Action::Escalated, 1),
            [Role::Contractor, Role::ManagementUnit]
        );
        assert_eq!(
            roles(&config, Severity::General, Action::Escalated, 2),
            [Role::Contractor, Role::ManagementUnit, Role::FireRescue]
        );
    }

    #[test]
    fn a_persons_own_steps_page_no_one() {
        let config = RoutingConfig::default();
        for action in [Action::Acknowledged, Action::Remark, Action::Closed] {
            assert!(roles(&config, Severity::Urgent, action, 2).is_empty());
        }
        let quiet = RoutingConfig {
            resolved: false,
            ..RoutingConfig::default()
        };
        assert!(roles(&quiet, Severity::Urgent, Action::Resolved, 0).is_empty());
        assert_eq!(
            roles(&config, Severity::General, Action::Resolved, 0),
            [Role::Contractor]
        );
    }

    #[test]
    fn fire_rescue_is_the_buildings_own_districts() {
        let (found, unreachable) = recipients(&building(), &[Role::FireRescue], &contacts());
        assert!(unreachable.is_empty());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].party, "梁平区消防救援大队");
        assert_eq!(found[0].target, wecom("https://qyapi.example/119"));
    }

    #[test]
    fn the_contractors_registry_email_is_used_when_no_contact_is_configured() {
        let mut contacts = contacts();
        contacts.party.retain(|p| p.name != "安泰维保");
        let (found, _) = recipients(&building(), &[Role::Contractor], &contacts);
        assert_eq!(
            found[0].target,
            Target::Email {
                to: "duty@antai.example".into()
            }
        );
    }

    #[test]
    fn a_role_nobody_can_be_reached_at_is_reported() {
        let (found, unreachable) = recipients(
            &building(),
            &[Role::BuildingManager, Role::ManagementUnit],
            &contacts(),
        );
        assert_eq!(unreachable, [Role::BuildingManager]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].lang,
            crate::rules::Lang::En,
            "the party's language"
        );
    }

    #[test]
    fn one_address_serving_two_roles_gets_one_message() {
        let mut contacts = contacts();
        contacts.party.push(Party {
            name: "楼栋长001".into(),
            targets: vec![wecom("https://qyapi.example/antai")],
            lang: Default::default(),
        });
        let (found, unreachable) = recipients(
            &building(),
            &[Role::Contractor, Role::BuildingManager],
            &contacts,
        );
        assert!(unreachable.is_empty());
        assert_eq!(found.len(), 1);
    }
}
