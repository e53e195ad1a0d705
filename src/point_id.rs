//! Point ids as they arrive from JavaScript: read on the JS thread, checked
//! on the pool with the rest of the call so a bad id rejects like any other
//! bad input.

use annvault_core::{BatchIndex, Error, PointId};
use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

pub enum JsPointId {
    Str(String),
    Num(f64),
    Other(ValueType),
}

impl JsPointId {
    pub fn check(self, index: BatchIndex) -> annvault_core::Result<PointId> {
        match self {
            JsPointId::Str(s) => PointId::from_string(s, index),
            JsPointId::Num(n) => PointId::from_number(n, index),
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
            ValueType::String => JsPointId::Str(unsafe { String::from_napi_value(env, value) }?),
            ValueType::Number => JsPointId::Num(unsafe { f64::from_napi_value(env, value) }?),
            other => JsPointId::Other(other),
        })
    }
}
