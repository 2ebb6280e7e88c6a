//! The Kubernetes API client: kube-client's stack (TLS from the kubeconfig,
//! base URI, authentication, extra headers, timeouts) over a connection pool
//! that lets go of what a burst opened.
//!
//! kube-client speaks HTTP/1.1, so every request in flight needs its own
//! connection, each with its TLS state and buffers. Its default pool keeps
//! idle connections without limit and, having no timer, never closes them:
//! after a 10k-pod burst the controller held 126 connections (a few MB)
//! for good. Here requests in flight are capped at
//! [`MAX_IN_FLIGHT_REQUESTS`], at most [`MAX_IDLE_CONNECTIONS`] stay pooled,
//! and those close after [`IDLE_TIMEOUT`].

use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use std::time::Duration;
use tower::{BoxError, ServiceBuilder};

/// API requests one process has in flight at most. Watches hold a slot only
/// until their response headers arrive.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 100;

/// Idle connections kept for reuse; more are closed once their request ends.
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// How long an idle connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Client-side rate limiting (`KUBE_CLIENT_QPS`, `KUBE_CLIENT_BURST`), as
/// client-go's token bucket: `burst` requests at once, `qps` sustained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub qps: u32,
    /// Requests at once.
    pub burst: u32,
}

/// The API client for `config`, without client-side rate limiting (the
/// leader-election Lease's, whose renewals must not queue behind a burst).
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    client_limited(config, None)
}

/// The API client for `config`, rate limited by `limit` (a watch counts
/// once, when it starts).
pub fn client_limited(
    config: kube::Config,
    limit: Option<RateLimit>,
) -> Result<kube::Client, kube::Error> {
    let mut connector = hyper_timeout::TimeoutConnector::new(config.rustls_https_connector()?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http = HttpClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .option_layer(limit.map(TokenBucket::layer))
        .concurrency_limit(MAX_IN_FLIGHT_REQUESTS)
        .map_err(BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// client-go's token bucket: `burst` tokens, refilled at `qps` a second;
/// each request takes one, waiting for it when none is left. Shared by
/// every clone of the client.
#[derive(Debug)]
struct TokenBucket {
    qps: f64,
    burst: f64,
    /// Tokens left, and when they were counted.
    state: std::sync::Mutex<(f64, tokio::time::Instant)>,
}

impl TokenBucket {
    fn layer(limit: RateLimit) -> RateLimited {
        let burst = f64::from(limit.burst.max(1));
        RateLimited(std::sync::Arc::new(TokenBucket {
            qps: f64::from(limit.qps.max(1)),
            burst,
            state: std::sync::Mutex::new((burst, tokio::time::Instant::now())),
        }))
    }

    /// Waits for a token and takes it.
    async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = tokio::time::Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.qps;
                *state = ((state.0 + refill).min(self.burst), now);
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The layer that puts a [`TokenBucket`] in front of a service.
#[derive(Debug, Clone)]
struct RateLimited(std::sync::Arc<TokenBucket>);

impl<S> tower::Layer<S> for RateLimited {
    type Service = RateLimitedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimitedService {
            inner,
            bucket: self.0.clone(),
        }
    }
}

/// A service whose calls each wait for a token first.
#[derive(Debug, Clone)]
struct RateLimitedService<S> {
    inner: S,
    bucket: std::sync::Arc<TokenBucket>,
}

impl<S, R> tower::Service<R> for RateLimitedService<S>
where
    S: tower::Service<R> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The instance `poll_ready` readied goes with the call; a clone stays.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let bucket = self.bucket.clone();
        Box::pin(async move {
            bucket.acquire().await;
            ready.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `burst` requests go at once, the rest at `qps`.
    #[tokio::test(start_paused = true)]
    async fn the_bucket_lets_a_burst_through_then_paces_at_qps() {
        let bucket = TokenBucket {
            qps: 10.0,
            burst: 5.0,
            state: std::sync::Mutex::new((5.0, tokio::time::Instant::now())),
        };
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst waited"
        );
        for _ in 0..10 {
            bucket.acquire().await;
        }
        let paced = start.elapsed();
        assert!(
            paced >= Duration::from_millis(990) && paced <= Duration::from_millis(1100),
            "10 more at 10 qps took {paced:?}"
        );
    }
}
