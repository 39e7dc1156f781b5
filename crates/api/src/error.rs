//! Errors as docker answers them: `{"message": ...}` with its status codes (404 no such
//! container or image, 409 conflict, 400 bad parameter, 500 the engine failed).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_engine::Error as E;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    /// A request the API defines that Berth does not serve (yet): said, never ignored.
    pub fn unsupported(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{what} is not supported by berth serve"),
        )
    }

    /// An engine error in docker's words and status; `layout` words a name conflict.
    pub fn engine(layout: &berth_engine::layout::Layout, e: E) -> ApiError {
        match e {
            E::NoSuchContainer(r) => ApiError::not_found(format!("No such container: {r}")),
            E::NameInUse(n) => {
                ApiError::conflict(berth_engine::create::name_in_use_message(layout, &n))
            }
            E::Busy(id) => ApiError::conflict(format!(
                "You cannot remove a running container {id}. Stop the container before \
                 attempting removal or force remove"
            )),
            E::Image(berth_image::Error::NoSuchImage(r)) => {
                ApiError::not_found(format!("No such image: {r}"))
            }
            E::NoSuchNetwork(n) => ApiError::not_found(format!("network {n} not found")),
            E::NoSuchVolume(n) => ApiError::not_found(format!("get {n}: no such volume")),
            e @ (E::Invalid(_) | E::PlatformMismatch { .. }) => ApiError::bad(chain(&e)),
            e => ApiError::internal(chain(&e)),
        }
    }
}

/// The message and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut m = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(": ");
            m.push_str(&t);
        }
        src = s.source();
    }
    m
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> ApiError {
        match e {
            berth_image::Error::NoSuchImage(r) => {
                ApiError::not_found(format!("No such image: {r}"))
            }
            e => ApiError::internal(chain(&e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}
