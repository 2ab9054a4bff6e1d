//! Hazard items (隐患): opened by the rules, acknowledged, resolved when
//! the condition clears, closed (销号) by a person; deadlines per severity
//! and escalation (挂牌督办). (Being written.)

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::registry::Building;
use crate::rules::Verdict;
use crate::store::{Store, StoreError};

/// `[hazards]`: deadlines and escalation timers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardsConfig {}

/// Opens, reopens and resolves `building`'s hazards from its new verdict,
/// inside the judging transaction (the building's row is locked).
pub async fn reconcile(
    _conn: &mut sqlx::AnyConnection,
    _building: &Building,
    _verdict: &Verdict,
    _now: OffsetDateTime,
    _config: &HazardsConfig,
) -> Result<(), StoreError> {
    Ok(())
}

/// Escalates hazards unacknowledged or overdue at `now`.
pub async fn escalate(
    _store: &Store,
    _now: OffsetDateTime,
    _config: &HazardsConfig,
) -> Result<(), StoreError> {
    Ok(())
}
