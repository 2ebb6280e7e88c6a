//! What woke a controller: a counter per kind of change, and waiters that
//! let a burst of watch events settle into one pass.

use std::time::Duration;
use tokio::sync::watch;

/// Which kinds changed since a controller last looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Bumped on every pod event.
    pub pods: u64,
    /// Bumped on every event of any other kind.
    pub other: u64,
}

/// Which changes wake a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Any kind, pods included.
    Everything,
    /// Anything but pods (the bulk of watch events at scale).
    AllButPods,
}

/// How long a burst of watch events may settle before a woken controller
/// makes its pass: at 10k pods every pod update is an event, and one pass
/// per event would scan the caches thousands of times a second.
const SETTLE: Duration = Duration::from_millis(50);

/// Wakes a controller when something it cares about has changed.
pub struct ChangeWaiter {
    changes: watch::Receiver<Changes>,
    seen: Changes,
    interest: Interest,
}

impl ChangeWaiter {
    /// A waiter on `changes` that has seen nothing yet.
    pub(super) fn new(changes: watch::Receiver<Changes>, interest: Interest) -> Self {
        ChangeWaiter {
            changes,
            seen: Changes::default(),
            interest,
        }
    }

    /// Waits until a change of interest happened since the last call (at
    /// once when one already has) and `SETTLE` has passed, or until
    /// `timeout`. Returns `false` when the caches have stopped.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = *self.changes.borrow_and_update();
            let relevant = match self.interest {
                Interest::Everything => now != self.seen,
                Interest::AllButPods => now.other != self.seen.other,
            };
            if relevant {
                self.seen = now;
                tokio::time::sleep(SETTLE).await;
                return true;
            }
            tokio::select! {
                changed = self.changes.changed() => if changed.is_err() { return false },
                _ = tokio::time::sleep_until(deadline) => return true,
            }
        }
    }
}
