//! Communication faults: a unit that stops answering, answers late, answers
//! every request with an exception, answers with garbage, or keeps
//! answering with frozen values. Pure: [`CommFaults::reply`] decides what a
//! request gets; the servers carry the decision out.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_modbus::{ExceptionCode, Request, Response};

use crate::model::BuildingModel;
use crate::registers::{self, UNITS};

/// A communication fault of one unit or of every unit of a building,
/// injected at run time; process faults ([`crate::Fault`]) go on regardless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommFault {
    /// No response at all: the client times out.
    Dead,
    /// Every answer is `delay_ms` late.
    Slow { delay_ms: u64 },
    /// Every request is answered with Modbus exception `code` (1-255, e.g.
    /// 4 = server device failure, 6 = server device busy).
    Exception { code: u8 },
    /// The answer's bytes are corrupted on the wire: a CRC error on RTU, an
    /// invalid frame and a closed connection on Modbus TCP.
    Garbage,
    /// The unit's registers stop changing: answers come from the state at
    /// the moment of injection.
    Frozen,
}

/// A communication fault in force: the body of `POST /buildings/{id}/comm`
/// and an entry of a building's snapshot, e.g. `{"fault":"dead","unit":3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCommFault {
    /// The unit it applies to; absent or `null` for every unit of the building.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<u8>,
    /// The fault.
    #[serde(flatten)]
    pub fault: CommFault,
}

/// A communication fault that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommFaultError {
    #[error("no unit {unit} on the line; units are {UNITS:?}")]
    UnknownUnit { unit: u8 },
    #[error("exception code must be 1-255, not 0")]
    ZeroExceptionCode,
}

/// A fault in force with what it needs to act.
#[derive(Debug, Clone, PartialEq)]
struct Active {
    fault: CommFault,
    /// For [`CommFault::Frozen`]: the building as it was at injection.
    frozen: Option<Box<BuildingModel>>,
}

/// The communication faults of one building. A fault for one unit takes
/// precedence over one for every unit; a fault for every unit replaces all
/// faults before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CommFaults {
    all: Option<Active>,
    units: BTreeMap<u8, Active>,
}

/// What one request gets: the servers carry it out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// The answer, or `None` for silence.
    pub(crate) answer: Option<Result<Response, ExceptionCode>>,
    /// How long to hold the answer back, besides any line time.
    pub(crate) delay: Duration,
    /// Whether the answer's bytes are corrupted on the wire.
    pub(crate) garble: bool,
}

impl CommFaults {
    /// Applies `fault` to `unit` (or every unit); `model` is the building
    /// now, kept for [`CommFault::Frozen`].
    pub(crate) fn inject(
        &mut self,
        unit: Option<u8>,
        fault: CommFault,
        model: &BuildingModel,
    ) -> Result<(), CommFaultError> {
        if let Some(unit) = unit.filter(|u| !UNITS.contains(u)) {
            return Err(CommFaultError::UnknownUnit { unit });
        }
        if fault == (CommFault::Exception { code: 0 }) {
            return Err(CommFaultError::ZeroExceptionCode);
        }
        let frozen = (fault == CommFault::Frozen).then(|| Box::new(model.clone()));
        let active = Active { fault, frozen };
        match unit {
            Some(unit) => {
                self.units.insert(unit, active);
            }
            None => {
                self.units.clear();
                self.all = Some(active);
            }
        }
        Ok(())
    }

    /// Removes every communication fault.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The faults in force: the one for every unit first, then by unit.
    pub(crate) fn list(&self) -> Vec<UnitCommFault> {
        let all = self.all.iter().map(|active| UnitCommFault {
            unit: None,
            fault: active.fault.clone(),
        });
        let units = self.units.iter().map(|(unit, active)| UnitCommFault {
            unit: Some(*unit),
            fault: active.fault.clone(),
        });
        all.chain(units).collect()
    }

    fn active(&self, unit: u8) -> Option<&Active> {
        self.units.get(&unit).or(self.all.as_ref())
    }

    /// What `request` to `unit` gets from a building in state `model`.
    pub(crate) fn reply(&self, model: &BuildingModel, unit: u8, request: &Request<'_>) -> Reply {
        let mut reply = Reply {
            answer: None,
            delay: Duration::ZERO,
            garble: false,
        };
        let Some(active) = self.active(unit) else {
            reply.answer = Some(registers::respond(model, unit, request));
            return reply;
        };
        let from = active.frozen.as_deref().unwrap_or(model);
        match active.fault {
            CommFault::Dead => {}
            CommFault::Slow { delay_ms } => {
                reply.answer = Some(registers::respond(from, unit, request));
                reply.delay = Duration::from_millis(delay_ms);
            }
            CommFault::Exception { code } => reply.answer = Some(Err(ExceptionCode::new(code))),
            CommFault::Garbage => {
                reply.answer = Some(registers::respond(from, unit, request));
                reply.garble = true;
            }
            CommFault::Frozen => reply.answer = Some(registers::respond(from, unit, request)),
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Fault;
    use crate::options::SimOptions;
    use crate::registers::{PANEL_UNIT, PUMP_UNIT, TANK_UNIT};
    use crate::spec::BuildingSpec;

    const LEVEL: Request<'static> = Request::ReadHoldingRegisters(4, 1);

    fn model() -> BuildingModel {
        BuildingModel::new(BuildingSpec::example("C-1"), &SimOptions::default())
    }

    fn level(reply: &Reply) -> u16 {
        match &reply.answer {
            Some(Ok(Response::ReadHoldingRegisters(words))) => words[0],
            other => panic!("not a register read: {other:?}"),
        }
    }

    #[test]
    fn without_faults_every_unit_answers_from_the_model() {
        let reply = CommFaults::default().reply(&model(), TANK_UNIT, &LEVEL);
        assert_eq!(level(&reply), 2400);
        assert_eq!(reply.delay, Duration::ZERO);
        assert!(!reply.garble);
    }

    #[test]
    fn a_dead_unit_gives_no_answer_while_the_others_still_do() {
        let m = model();
        let mut faults = CommFaults::default();
        faults.inject(Some(PUMP_UNIT), CommFault::Dead, &m).unwrap();
        assert_eq!(faults.reply(&m, PUMP_UNIT, &LEVEL).answer, None);
        assert_eq!(level(&faults.reply(&m, TANK_UNIT, &LEVEL)), 2400);
    }

    #[test]
    fn a_fault_for_every_unit_reaches_unknown_units_too() {
        let m = model();
        let mut faults = CommFaults::default();
        faults.inject(None, CommFault::Dead, &m).unwrap();
        for unit in [TANK_UNIT, PANEL_UNIT, 9] {
            assert_eq!(faults.reply(&m, unit, &LEVEL).answer, None, "unit {unit}");
        }
    }

    #[test]
    fn a_slow_unit_answers_the_same_values_later() {
        let m = model();
        let mut faults = CommFaults::default();
        let slow = CommFault::Slow { delay_ms: 750 };
        faults.inject(Some(TANK_UNIT), slow, &m).unwrap();
        let reply = faults.reply(&m, TANK_UNIT, &LEVEL);
        assert_eq!(level(&reply), 2400);
        assert_eq!(reply.delay, Duration::from_millis(750));
    }

    #[test]
    fn an_exception_fault_answers_every_request_with_its_code() {
        let m = model();
        let mut faults = CommFaults::default();
        faults
            .inject(None, CommFault::Exception { code: 4 }, &m)
            .unwrap();
        let answer = faults.reply(&m, TANK_UNIT, &LEVEL).answer;
        assert_eq!(answer, Some(Err(ExceptionCode::ServerDeviceFailure)));
        let write = Request::WriteSingleRegister(0, 1);
        let answer = faults.reply(&m, PANEL_UNIT, &write).answer;
        assert_eq!(answer, Some(Err(ExceptionCode::ServerDeviceFailure)));
    }

    #[test]
    fn garbage_keeps_the_answer_and_marks_it_for_corruption() {
        let m = model();
        let mut faults = CommFaults::default();
        faults
            .inject(Some(TANK_UNIT), CommFault::Garbage, &m)
            .unwrap();
        let reply = faults.reply(&m, TANK_UNIT, &LEVEL);
        assert!(reply.garble);
        assert_eq!(level(&reply), 2400);
        assert!(!faults.reply(&m, PUMP_UNIT, &LEVEL).garble);
    }

    #[test]
    fn a_frozen_unit_keeps_answering_the_state_at_injection() {
        let mut m = model();
        let mut faults = CommFaults::default();
        faults
            .inject(Some(TANK_UNIT), CommFault::Frozen, &m)
            .unwrap();
        m.inject(Fault::DrainTank {
            to_level_m: Some(1.0),
        })
        .unwrap();
        for _ in 0..100 {
            m.step(Duration::from_millis(100));
        }
        assert_eq!(level(&faults.reply(&m, TANK_UNIT, &LEVEL)), 2400);
        faults.clear();
        assert_eq!(level(&faults.reply(&m, TANK_UNIT, &LEVEL)), 1900);
    }

    #[test]
    fn a_unit_fault_overrides_the_building_fault_until_a_new_building_fault() {
        let m = model();
        let mut faults = CommFaults::default();
        faults.inject(None, CommFault::Dead, &m).unwrap();
        faults
            .inject(Some(TANK_UNIT), CommFault::Frozen, &m)
            .unwrap();
        assert_eq!(level(&faults.reply(&m, TANK_UNIT, &LEVEL)), 2400);
        assert_eq!(
            faults.list(),
            vec![
                UnitCommFault {
                    unit: None,
                    fault: CommFault::Dead
                },
                UnitCommFault {
                    unit: Some(TANK_UNIT),
                    fault: CommFault::Frozen
                },
            ]
        );
        faults.inject(None, CommFault::Garbage, &m).unwrap();
        assert_eq!(faults.list().len(), 1);
        assert!(faults.reply(&m, TANK_UNIT, &LEVEL).garble);
    }

    #[test]
    fn unknown_units_and_exception_code_zero_are_refused() {
        let m = model();
        let mut faults = CommFaults::default();
        assert_eq!(
            faults.inject(Some(9), CommFault::Dead, &m),
            Err(CommFaultError::UnknownUnit { unit: 9 })
        );
        assert_eq!(
            faults.inject(None, CommFault::Exception { code: 0 }, &m),
            Err(CommFaultError::ZeroExceptionCode)
        );
        assert!(faults.list().is_empty());
    }

    #[test]
    fn the_json_form_names_the_fault_and_optionally_the_unit() {
        let body: UnitCommFault = serde_json::from_str(r#"{"fault":"dead","unit":3}"#).unwrap();
        assert_eq!(body.unit, Some(3));
        assert_eq!(body.fault, CommFault::Dead);
        let body: UnitCommFault =
            serde_json::from_str(r#"{"fault":"slow","delay_ms":500}"#).unwrap();
        assert_eq!(
            (body.unit, body.fault),
            (None, CommFault::Slow { delay_ms: 500 })
        );
        let json = serde_json::to_value(UnitCommFault {
            unit: Some(2),
            fault: CommFault::Exception { code: 4 },
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"fault": "exception", "code": 4, "unit": 2})
        );
        let typo = serde_json::from_str::<UnitCommFault>(r#"{"fault":"slow","delay":5}"#);
        assert!(typo.is_err());
    }
}
