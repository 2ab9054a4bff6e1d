//! Reading history: raw readings kept for `[history] raw_days`, per-minute
//! min/max/avg kept for `minute_days`. (Being written.)

use serde::{Deserialize, Serialize};

/// `[history]`: how long history is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {}
