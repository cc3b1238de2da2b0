//! Time comes in through a `Clock` so tests can pin it.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock for tests: starts at a fixed instant and advances by `step_nanos` on every call
/// (0 keeps it still). `set` moves it explicitly.
#[derive(Debug)]
pub struct TestClock {
    nanos: AtomicI64,
    step_nanos: i64,
}

impl TestClock {
    pub fn new(start: DateTime<Utc>, step_nanos: i64) -> Arc<Self> {
        Arc::new(TestClock {
            nanos: AtomicI64::new(start.timestamp_nanos_opt().unwrap_or(0)),
            step_nanos,
        })
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.nanos
            .store(t.timestamp_nanos_opt().unwrap_or(0), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let n = self.nanos.fetch_add(self.step_nanos, Ordering::SeqCst);
        DateTime::from_timestamp_nanos(n)
    }
}

/// The clock used outside tests.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
