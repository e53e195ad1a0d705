//! How a core error crosses into JavaScript.
//!
//! The binding rejects with a plain `Error` whose message is
//! `annvault:` followed by a JSON envelope carrying the stable numeric code,
//! its name, the JS class to raise, the operation and structured details.
//! The façade (`index.js`) turns the envelope into the exported error class;
//! users never see the envelope.

use annvault_core::Error;
use napi::Status;
use napi_derive::napi;

pub const ENVELOPE_PREFIX: &str = "annvault:";

pub fn to_js_error(error: Error, operation: &str) -> napi::Error {
    let envelope = serde_json::json!({
        "code": error.code(),
        "kind": error.kind(),
        "class": error.class().name(),
        "operation": operation,
        "message": error.full_message(),
        "details": error.details(),
    });
    napi::Error::new(
        Status::GenericFailure,
        format!("{ENVELOPE_PREFIX}{envelope}"),
    )
}

/// The stable error codes by name, so the façade raises its own errors
/// (payload not plain JSON, wrong argument types) with the core's codes.
#[napi]
pub fn error_codes() -> std::collections::HashMap<String, u32> {
    annvault_core::error::all_codes()
        .iter()
        .map(|(kind, code)| (kind.to_string(), *code))
        .collect()
}
