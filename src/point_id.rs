//! Point ids as they arrive from JavaScript: read on the JS thread, checked
//! on the pool with the rest of the call so a bad id rejects like any other
//! bad input.
//!
//! A JS string is UTF-16 and may hold a lone surrogate, which UTF-8 cannot:
//! napi's UTF-8 read turns it into U+FFFD, so `'\uD800'` and `'\uDBFF'` would
//! both become the id `"\u{FFFD}"`. Such ids are rejected instead
//! ([`JsPointId::Malformed`]), never stored as an alias of another id.

use annvault_core::{BatchIndex, Error, PointId};
use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

pub enum JsPointId {
    Str(String),
    Num(f64),
    /// A string that is not well-formed UTF-16 (it holds a lone surrogate).
    Malformed,
    Other(ValueType),
}

impl JsPointId {
    pub fn check(self, index: BatchIndex) -> annvault_core::Result<PointId> {
        match self {
            JsPointId::Str(s) => PointId::from_string(s, index),
            JsPointId::Num(n) => PointId::from_number(n, index),
            JsPointId::Malformed => Err(Error::InvalidId {
                index,
                reason: "a string id must be well-formed UTF-16 (it holds a lone surrogate)".into(),
            }),
            JsPointId::Other(kind) => Err(Error::InvalidId {
                index,
                reason: format!(
                    "an id must be a string or a number, got {}",
                    kind.to_string().to_lowercase()
                ),
            }),
        }
    }
}

pub fn check_all(ids: Vec<JsPointId>) -> annvault_core::Result<Vec<PointId>> {
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| id.check(BatchIndex(Some(i))))
        .collect()
}

impl TypeName for JsPointId {
    fn type_name() -> &'static str {
        "string | number"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for JsPointId {}

impl FromNapiValue for JsPointId {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut raw_type = 0;
        // SAFETY: `env` and `value` come from napi for this call.
        napi::check_status!(unsafe { sys::napi_typeof(env, value, &mut raw_type) })?;
        Ok(match ValueType::from(raw_type) {
            // SAFETY: the value was just checked to be a string / a number.
            ValueType::String => {
                // SAFETY: as above.
                let s = unsafe { String::from_napi_value(env, value) }?;
                // U+FFFD is rare in ids: only then is the string read again as
                // UTF-16 to tell a real U+FFFD from a replaced lone surrogate.
                // SAFETY: as above.
                if s.contains('\u{FFFD}') && !unsafe { well_formed_utf16(env, value) }? {
                    JsPointId::Malformed
                } else {
                    JsPointId::Str(s)
                }
            }
            ValueType::Number => JsPointId::Num(unsafe { f64::from_napi_value(env, value) }?),
            other => JsPointId::Other(other),
        })
    }
}

/// Whether the JS string `value` is well-formed UTF-16 (no lone surrogate).
///
/// # Safety
/// `env` and `value` must come from napi for this call, `value` a string.
unsafe fn well_formed_utf16(env: sys::napi_env, value: sys::napi_value) -> napi::Result<bool> {
    let mut len = 0;
    // SAFETY: a null buffer asks for the length only.
    napi::check_status!(unsafe {
        sys::napi_get_value_string_utf16(env, value, std::ptr::null_mut(), 0, &mut len)
    })?;
    let mut units = vec![0u16; len + 1];
    let mut written = 0;
    // SAFETY: `units` holds `len + 1` code units, the string and its terminator.
    napi::check_status!(unsafe {
        sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), units.len(), &mut written)
    })?;
    units.truncate(written);
    Ok(char::decode_utf16(units).all(|c| c.is_ok()))
}
