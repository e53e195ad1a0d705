//! One `Task` type for every store call that runs on the libuv pool.

use std::panic::{catch_unwind, AssertUnwindSafe};

use annvault_core::Error;
use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{Env, Task};

use crate::error::to_js_error;

type Work<T> = Box<dyn FnOnce() -> annvault_core::Result<T> + Send>;

/// Runs `work` off the JS thread; resolves with its value or rejects with
/// the core error (panics included) in the envelope of [`to_js_error`].
pub struct Job<T> {
    operation: &'static str,
    work: Option<Work<T>>,
}

impl<T> Job<T> {
    pub fn new(
        operation: &'static str,
        work: impl FnOnce() -> annvault_core::Result<T> + Send + 'static,
    ) -> Self {
        Job {
            operation,
            work: Some(Box::new(work)),
        }
    }
}

impl<T> Task for Job<T>
where
    T: ToNapiValue + TypeName + Send + 'static,
{
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let work = self.work.take().ok_or_else(|| {
            to_js_error(
                Error::Internal {
                    reason: "job ran twice".into(),
                },
                self.operation,
            )
        })?;
        let outcome = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Error::Internal { reason })
        });
        outcome.map_err(|e| to_js_error(e, self.operation))
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }
}
