//! Which sessions an engine tick looks at: those that printed or ended since the last tick,
//! and those with a look due by now. Nothing else is looked at, so a tick costs nothing for
//! agents that sit idle, however many there are.
//!
//! Each session's `notify` (called by its threads after every chunk of output and at its end)
//! queues the session's name, once until the next tick takes the queue: a flag per session
//! makes the call an atomic swap when the name waits already. Looks due later (an Enter to
//! send, the next key of a dialog's answer, a dialog to look at again) wait in a heap of
//! instants.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Names queued by the sessions, each with the flag that says it is queued.
type Queue = Arc<Mutex<Vec<(String, Arc<AtomicBool>)>>>;

#[derive(Default)]
pub(crate) struct Attention {
    queue: Queue,
    /// Looks due at an instant (a name may be in here more than once: a look too many is
    /// harmless).
    timers: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Attention {
    /// The `notify` for the session of `name`, which is queued at once as well (a new
    /// session is looked at on the next tick).
    pub fn notify_for(&self, name: &str) -> Arc<dyn Fn() + Send + Sync> {
        let woken = Arc::new(AtomicBool::new(false));
        let queue = Arc::clone(&self.queue);
        let name = name.to_string();
        let notify = move || {
            if !woken.swap(true, Ordering::AcqRel) {
                lock(&queue).push((name.clone(), Arc::clone(&woken)));
            }
        };
        notify();
        Arc::new(notify)
    }

    /// Has the first tick at or after `at` look at `name`.
    pub fn at(&mut self, at: Instant, name: &str) {
        self.timers.push(Reverse((at, name.to_string())));
    }

    /// The names to look at now. Those the sessions queued are taken off the queue and may
    /// queue themselves again from here on, so nothing they do after this call is missed.
    pub fn due(&mut self, now: Instant) -> BTreeSet<String> {
        let queued = std::mem::take(&mut *lock(&self.queue));
        let mut due = BTreeSet::new();
        for (name, woken) in queued {
            woken.store(false, Ordering::Release);
            due.insert(name);
        }
        while self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            if let Some(Reverse((_, name))) = self.timers.pop() {
                due.insert(name);
            }
        }
        due
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn only_sessions_that_printed_or_are_due_are_looked_at() {
        let mut a = Attention::default();
        let notifies: Vec<_> = (0..100)
            .map(|i| a.notify_for(&format!("a{i:02}")))
            .collect();
        let now = Instant::now();
        // New sessions: each looked at once.
        assert_eq!(a.due(now).len(), 100);
        // A hundred idle sessions: nothing to look at, tick after tick.
        assert!(a.due(now).is_empty());
        assert!(a.due(now).is_empty());
        // One prints a thousand chunks, another one: each is looked at once.
        for _ in 0..1000 {
            notifies[7]();
        }
        notifies[42]();
        assert_eq!(names(&a.due(now)), ["a07", "a42"]);
        assert!(a.due(now).is_empty());
        // Output after a tick took the queue wakes the session again.
        notifies[7]();
        assert_eq!(names(&a.due(now)), ["a07"]);
        // A look due later comes at its instant, not before, and once.
        a.at(now + Duration::from_millis(300), "a55");
        a.at(now + Duration::from_millis(100), "a03");
        assert!(a.due(now).is_empty());
        assert_eq!(names(&a.due(now + Duration::from_millis(100))), ["a03"]);
        assert_eq!(names(&a.due(now + Duration::from_secs(1))), ["a55"]);
        assert!(a.due(now + Duration::from_secs(2)).is_empty());
    }
}
