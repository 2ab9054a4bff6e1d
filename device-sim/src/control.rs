//! The HTTP control interface: inspect buildings, inject and clear process
//! and communication faults. The routes are listed in the crate docs.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::Error;
use crate::comm::UnitCommFault;
use crate::model::Fault;
use crate::snapshot::BuildingSnapshot;
use crate::world::World;

/// An error answered to the control client, always as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("no building {0:?}")]
    NotFound(String),
    #[error("{1}")]
    BadBody(StatusCode, String),
    #[error("{0}")]
    Unprocessable(String),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::UnknownBuilding(id) => Self::NotFound(id),
            other => Self::Unprocessable(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadBody(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadBody(status, _) => *status,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (status, Json(body)).into_response()
    }
}

pub(crate) fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/buildings", get(list))
        .route("/buildings/{id}", get(one))
        .route("/buildings/{id}/faults", post(inject).delete(clear))
        .route("/buildings/{id}/comm", post(inject_comm).delete(clear_comm))
        .with_state(world)
}

async fn list(State(world): State<Arc<World>>) -> Json<Vec<BuildingSnapshot>> {
    Json(world.snapshots())
}

async fn one(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
) -> Result<Json<BuildingSnapshot>, ApiError> {
    world.snapshot(&id).map(Json).ok_or(ApiError::NotFound(id))
}

async fn inject(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
    body: Result<Json<Fault>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    if world.snapshot(&id).is_none() {
        return Err(ApiError::NotFound(id));
    }
    let Json(fault) = body?;
    world.inject(&id, fault)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    world.clear(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn inject_comm(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
    body: Result<Json<UnitCommFault>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    world.index_of(&id)?;
    let Json(UnitCommFault { unit, fault }) = body?;
    world.inject_comm(&id, unit, fault)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_comm(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    world.clear_comm(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::model::BuildingModel;
    use crate::options::SimOptions;
    use crate::spec::{BuildingSpec, Use};

    fn world() -> Arc<World> {
        let spec = BuildingSpec {
            id: "C-1".into(),
            name: "控制1栋".into(),
            use_: Use::Public,
            commercial_floor_over_1000m2: true,
            height_m: 60.0,
            storeys: 18,
            tank_area_m2: 10.0,
            tank_height_m: 3.0,
            tank_dead_level_m: 0.3,
            tank_bottom_above_top_outlet_m: 5.0,
            jockey_pump: true,
        };
        Arc::new(World::new(vec![BuildingModel::new(spec, &SimOptions::default())]).unwrap())
    }

    async fn call(
        world: &Arc<World>,
        method: &str,
        uri: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = router(Arc::clone(world)).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    #[tokio::test]
    async fn listing_shows_every_building_with_its_state() {
        let world = world();
        let (status, body) = call(&world, "GET", "/buildings", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body[0]["id"], "C-1");
        assert!(
            (body[0]["level_m"].as_f64().unwrap() - 2.9).abs() < 1e-9,
            "{body}"
        );
        assert_eq!(body[0]["pumps"]["jockey_present"], true);
        assert_eq!(body[0]["faults"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn an_injected_fault_shows_in_the_snapshot_until_cleared() {
        let world = world();
        let fault = r#"{"fault":"drain_tank","to_level_m":0.3}"#;
        let (status, _) = call(&world, "POST", "/buildings/C-1/faults", Some(fault)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&world, "GET", "/buildings/C-1", None).await;
        assert_eq!(
            body["faults"],
            serde_json::json!([{"fault": "drain_tank", "to_level_m": 0.3}])
        );

        let (status, _) = call(&world, "DELETE", "/buildings/C-1/faults", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&world, "GET", "/buildings/C-1", None).await;
        assert_eq!(body["faults"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_communication_fault_shows_in_the_snapshot_until_cleared() {
        let world = world();
        let dead = r#"{"fault":"dead","unit":3}"#;
        let (status, _) = call(&world, "POST", "/buildings/C-1/comm", Some(dead)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let slow = r#"{"fault":"slow","delay_ms":800}"#;
        let (status, _) = call(&world, "POST", "/buildings/C-1/comm", Some(slow)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&world, "GET", "/buildings/C-1", None).await;
        assert_eq!(
            body["comm_faults"],
            serde_json::json!([{"fault": "slow", "delay_ms": 800}]),
            "a fault for every unit replaces the ones before it"
        );
        let (status, _) = call(&world, "POST", "/buildings/C-1/comm", Some(dead)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&world, "GET", "/buildings/C-1", None).await;
        assert_eq!(
            body["comm_faults"][1],
            serde_json::json!({"fault": "dead", "unit": 3})
        );
        assert_eq!(body["faults"], serde_json::json!([]));

        let (status, _) = call(&world, "DELETE", "/buildings/C-1/comm", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&world, "GET", "/buildings/C-1", None).await;
        assert_eq!(body["comm_faults"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_communication_fault_for_a_missing_unit_or_building_is_refused() {
        let world = world();
        let nine = r#"{"fault":"frozen","unit":9}"#;
        let (status, body) = call(&world, "POST", "/buildings/C-1/comm", Some(nine)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().unwrap().contains("unit 9"), "{body}");
        let (status, _) = call(
            &world,
            "POST",
            "/buildings/C-1/comm",
            Some(r#"{"fault":"noisy"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        for (method, body) in [("POST", Some(r#"{"fault":"dead"}"#)), ("DELETE", None)] {
            let (status, _) = call(&world, method, "/buildings/NOPE/comm", body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        }
    }

    #[tokio::test]
    async fn an_unknown_building_is_a_json_404() {
        let world = world();
        for (method, uri) in [
            ("GET", "/buildings/NOPE"),
            ("DELETE", "/buildings/NOPE/faults"),
        ] {
            let (status, body) = call(&world, method, uri, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(body["error"].as_str().unwrap().contains("NOPE"), "{body}");
        }
        let (status, _) = call(
            &world,
            "POST",
            "/buildings/NOPE/faults",
            Some(r#"{"fault":"fire_alarm"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_malformed_fault_is_refused_with_a_message() {
        let world = world();
        let (status, body) = call(
            &world,
            "POST",
            "/buildings/C-1/faults",
            Some(r#"{"fault":"flood"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().unwrap().contains("flood"), "{body}");

        let (status, _) = call(&world, "POST", "/buildings/C-1/faults", Some("{not json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let too_high = r#"{"fault":"drain_tank","to_level_m":9}"#;
        let (status, body) = call(&world, "POST", "/buildings/C-1/faults", Some(too_high)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["error"].as_str().unwrap().contains("to_level_m"),
            "{body}"
        );
    }
}
