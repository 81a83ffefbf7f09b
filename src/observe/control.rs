//! The HTTP server's test-cluster endpoints: faults for the next requests
//! of an API, and nodes taken down and brought back.
//!
//! - `POST /api/v1/faults` with `{"api": "Produce", "error":
//!   "NOT_LEADER_OR_FOLLOWER", "times": 2}` (or `"delay_ms": 300`, or
//!   `"disconnect": true`; `times` is 1 unless given, `"node": 2` limits it
//!   to one node);
//! - `DELETE /api/v1/faults` drops every waiting fault;
//! - `POST /api/v1/brokers/{id}/down` and `POST /api/v1/brokers/{id}/up`.
//!
//! A bad body answers 400 and an unknown node 404, each with a message. The
//! body is JSON whatever its Content-Type says (`curl -d` sends none).
//! They are served by a test cluster only (`brokers` > 1): a single broker
//! takes no faults from the network.

use std::time::Duration;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;
use serde::Deserialize;

use crate::broker::Control;
use crate::faults::{Fault, FaultKind};
use crate::handler::refuse::REFUSABLE;

/// A fault as the endpoint takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultBody {
    api: String,
    error: Option<String>,
    delay_ms: Option<u64>,
    #[serde(default)]
    disconnect: bool,
    times: Option<u32>,
    node: Option<i32>,
}

type Answer = (StatusCode, String);

pub(crate) async fn inject(State(control): State<Arc<Control>>, body: Bytes) -> Answer {
    let parsed = serde_json::from_slice::<FaultBody>(&body)
        .map_err(|e| format!("not a fault: {e}"))
        .and_then(|body| fault(&body, &control));
    match parsed {
        Ok((api, fault)) => {
            control.inject(api, fault.clone());
            (StatusCode::OK, format!("injected {fault:?} for {api:?}\n"))
        }
        Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")),
    }
}

pub(crate) async fn clear(State(control): State<Arc<Control>>) -> Answer {
    control.clear_faults();
    (StatusCode::OK, "cleared\n".into())
}

pub(crate) async fn node(
    State(control): State<Arc<Control>>,
    Path((id, action)): Path<(i32, String)>,
) -> Answer {
    if !control.has_node(id) {
        return (StatusCode::NOT_FOUND, format!("no node {id}\n"));
    }
    let done = match action.as_str() {
        "down" => control.node_down(id).await,
        "up" => control.node_up(id).await,
        _ => return (StatusCode::NOT_FOUND, "use .../down or .../up\n".into()),
    };
    match done {
        Ok(()) => (StatusCode::OK, format!("node {id} is {action}\n")),
        Err(e) => (StatusCode::CONFLICT, format!("{}\n", e.message())),
    }
}

/// The API and fault a body names, or why it is wrong.
fn fault(body: &FaultBody, control: &Control) -> Result<(ApiKey, Fault), String> {
    let api = crate::handler::SUPPORTED
        .iter()
        .map(|(key, _, _)| *key)
        .find(|key| format!("{key:?}") == body.api)
        .ok_or_else(|| {
            format!(
                "unknown API {:?} (names as in Kafka: \"Produce\", \"Fetch\", ...)",
                body.api
            )
        })?;
    let fault = match (&body.error, body.delay_ms, body.disconnect) {
        (Some(name), None, false) => Fault::error(error_named(name)?),
        (None, Some(ms), false) => Fault::delay(Duration::from_millis(ms)),
        (None, None, true) => Fault::disconnect(),
        _ => {
            return Err(
                "give exactly one of \"error\", \"delay_ms\" or \"disconnect\": true".into(),
            );
        }
    };
    if matches!(fault.kind(), FaultKind::Error(_)) && !REFUSABLE.contains(&api) {
        return Err(format!(
            "{api:?} has no error answer; use \"disconnect\" or \"delay_ms\""
        ));
    }
    let fault = match body.times {
        Some(0) => return Err("\"times\" must be at least 1".into()),
        times => fault.times(times.unwrap_or(1)),
    };
    match body.node {
        Some(node) if !control.has_node(node) => Err(format!("no node {node}")),
        Some(node) => Ok((api, fault.on_node(node))),
        None => Ok((api, fault)),
    }
}

/// The error Kafka names `name` ("NOT_LEADER_OR_FOLLOWER"), or its code.
fn error_named(name: &str) -> Result<ResponseError, String> {
    if let Ok(code) = name.parse::<i16>() {
        return ResponseError::try_from_code(code).ok_or_else(|| format!("no error code {code}"));
    }
    (-1..=200)
        .filter_map(ResponseError::try_from_code)
        .find(|e| screaming_snake(&format!("{e:?}")) == name)
        .ok_or_else(|| {
            format!("unknown error {name:?} (Kafka's names, e.g. \"NOT_LEADER_OR_FOLLOWER\")")
        })
}

/// "NotLeaderOrFollower" → "NOT_LEADER_OR_FOLLOWER".
fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_found_by_kafka_name_or_code() {
        assert_eq!(
            error_named("NOT_LEADER_OR_FOLLOWER"),
            Ok(ResponseError::NotLeaderOrFollower)
        );
        assert_eq!(
            error_named("15"),
            Ok(ResponseError::CoordinatorNotAvailable)
        );
        assert!(error_named("NO_SUCH_ERROR").is_err());
    }
}
