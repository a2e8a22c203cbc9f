//! The `/_sandbox/*` control plane, so `make run` and other processes can inspect the sandbox
//! and steer it without linking against it.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::faults::{Fault, FaultSpec};
use super::{Shared, json_response};

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, json_response(json!({ "error": message }))).into_response()
}

pub(crate) async fn state(State(shared): State<Arc<Shared>>) -> Response {
    json_response(shared.lock().snapshot(Instant::now()))
}

pub(crate) async fn faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultSpec>(&body) {
        Ok(spec) => {
            let fault = Fault::from(spec);
            shared.lock().inject(fault);
            json_response(json!({ "queued": true }))
        }
        Err(e) => bad_request(format!("invalid fault: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    password: Option<String>,
}

/// `{"password": null}` makes the instance password-free.
pub(crate) async fn password(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let change = match serde_json::from_slice::<PasswordChange>(&body) {
        Ok(change) => change,
        Err(e) => return bad_request(format!("invalid password change: {e}")),
    };
    if shared.lock().set_password(&id, change.password.as_deref()) {
        json_response(json!({ "updated": id }))
    } else {
        (StatusCode::NOT_FOUND, json_response(json!({ "error": format!("no instance {id}") }))).into_response()
    }
}
