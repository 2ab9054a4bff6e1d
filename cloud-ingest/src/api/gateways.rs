//! `GET /api/gateways` and `GET /api/gateways/{id}`: what each gateway last
//! said about itself and which of its messages have not arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use riser_contract::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ApiError;
use crate::App;
use crate::store::{GatewayState, SequenceState};

/// One sequence space of one stream: a new epoch starts when the gateway's
/// outbox is created afresh.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SequenceOut {
    #[schema(value_type = super::openapi::StreamDoc)]
    pub stream: Stream,
    pub epoch: u32,
    /// Highest sequence number received.
    pub highest: u64,
    /// Distinct sequence numbers received.
    pub received: u64,
    /// `highest - received`: lost, or still on the way (after a reconnect
    /// the newest messages arrive first, the backlog behind them).
    pub missing: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_received_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayOut {
    pub id: String,
    /// Buildings it reads, from the registry.
    pub buildings: Vec<String>,
    /// From its last status message (a gateway that only sent data counts as
    /// online); null if nothing ever arrived from it.
    pub online: Option<bool>,
    /// When anything from it last arrived.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    pub software: Option<String>,
    /// Its latest health report (the contract's `Health`), kept when it goes
    /// offline.
    pub health: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub health_at: Option<OffsetDateTime>,
    /// Sum of `missing` over its sequences.
    pub missing: u64,
    /// By stream, then epoch in order of first arrival.
    pub sequences: Vec<SequenceOut>,
}

fn gateway_out(
    app: &App,
    id: String,
    state: Option<GatewayState>,
    sequences: Vec<SequenceState>,
) -> GatewayOut {
    let sequences: Vec<_> = sequences
        .into_iter()
        .map(|s| SequenceOut {
            stream: s.stream,
            epoch: s.epoch,
            highest: s.highest,
            received: s.received,
            missing: s.missing(),
            first_received_at: s.first_received,
            last_received_at: s.last_received,
        })
        .collect();
    let buildings = app.registry.by_gateway(&id).map(|b| b.id.clone()).collect();
    let (online, last_seen, software, health, health_at) = match state {
        Some(s) => (
            Some(s.online),
            Some(s.last_seen),
            s.software,
            s.health,
            s.health_at,
        ),
        None => (None, None, None, None, None),
    };
    GatewayOut {
        buildings,
        online,
        last_seen,
        software,
        health,
        health_at,
        missing: sequences.iter().map(|s| s.missing).sum(),
        sequences,
        id,
    }
}

/// Every gateway in the registry or heard from, by id.
///
/// Those serving a building the caller sees; gateways in no building
/// (not yet bound) only for admins and unscoped installers.
#[utoipa::path(
    get,
    path = "/api/gateways",
    operation_id = "list_gateways",
    tag = "gateways",
    responses((status = 200, description = "The gateways, by id.", body = [GatewayOut])),
)]
pub(super) async fn list(
    State(app): State<Arc<App>>,
    principal: crate::auth::Principal,
) -> Result<Json<Vec<GatewayOut>>, ApiError> {
    let mut states: BTreeMap<String, GatewayState> = app
        .store
        .gateways()
        .await?
        .into_iter()
        .map(|g| (g.id.clone(), g))
        .collect();
    let mut sequences: BTreeMap<String, Vec<SequenceState>> = BTreeMap::new();
    for s in app.store.sequences(None).await? {
        sequences.entry(s.gateway.clone()).or_default().push(s);
    }
    let ids: BTreeSet<String> = app
        .registry
        .gateways()
        .into_iter()
        .map(str::to_owned)
        .chain(states.keys().cloned())
        .chain(sequences.keys().cloned())
        .filter(|id| super::sees_gateway(&app, &principal, id))
        .collect();
    Ok(Json(
        ids.into_iter()
            .map(|id| {
                let state = states.remove(&id);
                let seqs = sequences.remove(&id).unwrap_or_default();
                gateway_out(&app, id, state, seqs)
            })
            .collect(),
    ))
}

/// One gateway: online, last seen, latest health, per-stream sequence gaps.
#[utoipa::path(
    get,
    path = "/api/gateways/{id}",
    operation_id = "get_gateway",
    tag = "gateways",
    params(("id" = String, Path, description = "Gateway id, e.g. `gw-B2`.")),
    responses(
        (status = 200, description = "The gateway.", body = GatewayOut),
        (status = 404, description = "Unknown, or not one the caller sees.", body = super::ErrorBody),
    ),
)]
pub(super) async fn get(
    State(app): State<Arc<App>>,
    principal: crate::auth::Principal,
    Path(id): Path<String>,
) -> Result<Json<GatewayOut>, ApiError> {
    if !super::sees_gateway(&app, &principal, &id) {
        return Err(ApiError::NotFound("gateway"));
    }
    let state = app.store.gateway(&id).await?;
    let sequences = app.store.sequences(Some(&id)).await?;
    let known = app.registry.by_gateway(&id).next().is_some();
    if state.is_none() && sequences.is_empty() && !known {
        return Err(ApiError::NotFound("gateway"));
    }
    Ok(Json(gateway_out(&app, id, state, sequences)))
}
