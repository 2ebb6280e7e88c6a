//! Waiting on a condition with a deadline (never a bare sleep as synchronisation).

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Polls `check` until it holds (after 25 ms, then at doubling intervals up
/// to 200 ms, so a long wait does not load the machine it waits on); panics
/// naming `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(DEADLINE, what, check).await
}

/// [`eventually`] with its own deadline, for conditions that take longer by
/// nature (a whole cluster coming up, a timeout that must run out).
pub async fn eventually_within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(limit, what, || {
        let checked = check();
        async move { checked.await.then_some(()) }
    })
    .await
}

/// Polls `check` (as [`eventually`] does) until it returns `Some`, and returns what it
/// found; panics naming `what` after `limit`. (`?` inside `check` reads
/// "not yet".)
pub async fn eventually_some<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut interval = Duration::from_millis(25);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        // The last poll falls on the deadline itself, not a back-off past it.
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}
