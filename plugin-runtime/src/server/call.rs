//! Running one plugin author's future for one RPC: panics contained, the host's deadline
//! enforced, and a panic's message logged only after secrets are removed from it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;

use crate::{Error, ErrorKind};

/// Calls started since the process began (see [`calls_started`]).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// How many calls of the author's code have started; the idle-memory release watches it.
pub(crate) fn calls_started() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

thread_local! {
    /// Set while an author's future is being polled on this thread.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic inside a call happened (the payload is handled by the caller).
    static PANIC_LOCATION: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Whether the current thread is polling an author's future; the panic hook then leaves
/// the message to [`run`], which can remove secrets from it.
pub(crate) fn in_call() -> bool {
    IN_CALL.with(Cell::get)
}

/// Called by the panic hook for panics inside a call.
pub(crate) fn record_panic_location(location: String) {
    PANIC_LOCATION.with(|l| *l.borrow_mut() = location);
}

struct Mark(bool);

impl Mark {
    fn set() -> Self {
        Mark(IN_CALL.with(|c| c.replace(true)))
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        IN_CALL.with(|c| c.set(self.0));
    }
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
pub(crate) fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// Runs `fut`. A panic becomes an `Internal` error for this call only, its message logged
/// after `clean` removed secrets from it; when the host's deadline passes first the future
/// is dropped and the error is `DeadlineExceeded` (a little before the transport's own
/// timer, whose answer would be `Cancelled`).
pub(crate) async fn run<T>(
    fut: impl Future<Output = crate::Result<T>>,
    deadline: Option<Duration>,
    clean: impl Fn(&str) -> String,
) -> crate::Result<T> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    let mut fut = std::pin::pin!(fut);
    let marked = std::future::poll_fn(|cx| {
        let _mark = Mark::set();
        fut.as_mut().poll(cx)
    });
    let caught = AssertUnwindSafe(marked).catch_unwind();
    let outcome = match deadline {
        None => caught.await,
        Some(d) => {
            let margin = (d / 10).min(Duration::from_millis(5));
            match tokio::time::timeout(d.saturating_sub(margin), caught).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(Error::with_kind(
                        ErrorKind::DeadlineExceeded,
                        "the host's deadline passed before the plugin answered",
                    ));
                }
            }
        }
    };
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let location = PANIC_LOCATION.with(|l| std::mem::take(&mut *l.borrow_mut()));
            let message = clean(&payload_text(payload.as_ref()));
            tracing::error!(location, "plugin panicked: {message}");
            Err(Error::new("the plugin panicked while handling the call"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        let mut m = tonic::metadata::MetadataMap::new();
        for (v, d) in [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("999m", Duration::from_millis(999)),
            ("5u", Duration::from_micros(5)),
            ("7n", Duration::from_nanos(7)),
        ] {
            m.insert("grpc-timeout", v.parse().unwrap());
            assert_eq!(grpc_timeout(&m), Some(d), "{v}");
        }
        for bad in ["", "S", "123456789S", "1x", "-1S"] {
            m.insert("grpc-timeout", bad.parse().unwrap());
            assert_eq!(grpc_timeout(&m), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn deadline_and_panic() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        };
        let e = run(slow, Some(Duration::from_millis(20)), str::to_owned)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DeadlineExceeded);
        let boom = async {
            if in_call() {
                panic!("secret-123 leaked");
            }
            Ok(())
        };
        let e = run(boom, None, |s| s.replace("secret-123", "[password]"))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "the plugin panicked while handling the call");
        assert!(!in_call());
    }
}
