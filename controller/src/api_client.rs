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

/// The API client for `config`.
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
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
        .concurrency_limit(MAX_IN_FLIGHT_REQUESTS)
        .map_err(BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}
