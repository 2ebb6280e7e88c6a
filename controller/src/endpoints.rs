//! The controller's HTTP endpoints: Prometheus `/metrics` on `METRICS_PORT`,
//! `/healthz` and `/readyz` on `HEALTH_PROBE_PORT`; and log set-up.

use crate::metrics::SharedMetrics;
use crate::settings::{LogFormat, Settings};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// What the probes report.
#[derive(Debug, Default)]
pub struct Health {
    /// Set once the caches have synced: the replica can serve (`/readyz`).
    pub ready: AtomicBool,
    /// Why the process is not healthy (a controller stopped): `/healthz`
    /// then fails, and the kubelet restarts the pod.
    pub failure: std::sync::Mutex<Option<String>>,
}

impl Health {
    /// Marks the process unhealthy, for `reason`.
    pub fn fail(&self, reason: String) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// Why the process is unhealthy, if it is.
    pub fn failed(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Which endpoints a listener serves.
#[derive(Clone)]
enum Routes {
    Metrics(SharedMetrics),
    Probes(Arc<Health>),
}

fn respond(routes: &Routes, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match (routes, path) {
        (Routes::Metrics(metrics), "/metrics") => (StatusCode::OK, metrics.encode()),
        (Routes::Probes(health), "/healthz") => match health.failed() {
            Some(reason) => (StatusCode::INTERNAL_SERVER_ERROR, reason),
            None => (StatusCode::OK, "ok".to_string()),
        },
        (Routes::Probes(health), "/readyz") if health.ready.load(Ordering::SeqCst) => {
            (StatusCode::OK, "ok".to_string())
        }
        (Routes::Probes(_), "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "caches not synced".to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "not found".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn serve(listener: TcpListener, routes: Routes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<_>| {
                let response = respond(&routes, request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds both listeners (port 0 picks a free port) and serves them in the
/// background; returns the bound addresses (metrics, probes).
pub async fn start(
    settings: &Settings,
    metrics: SharedMetrics,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let bind = |port: u16| TcpListener::bind(("0.0.0.0", port));
    let metrics_listener = bind(settings.metrics_port).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("METRICS_PORT {}: {e}", settings.metrics_port),
        )
    })?;
    let probes_listener = bind(settings.health_probe_port).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("HEALTH_PROBE_PORT {}: {e}", settings.health_probe_port),
        )
    })?;
    let addresses = (
        metrics_listener.local_addr()?,
        probes_listener.local_addr()?,
    );
    tokio::spawn(serve(metrics_listener, Routes::Metrics(metrics)));
    tokio::spawn(serve(probes_listener, Routes::Probes(health)));
    Ok(addresses)
}

/// Installs the global log subscriber (`LOG_LEVEL`, `LOG_FORMAT`,
/// `LOG_OUTPUT_PATHS`: `stdout`, `stderr` or a file appended to); a second
/// call is ignored.
pub fn init_logging(settings: &Settings) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = match settings.log_output_paths.trim() {
        "stdout" => BoxMakeWriter::new(std::io::stdout),
        "stderr" => BoxMakeWriter::new(std::io::stderr),
        path => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => BoxMakeWriter::new(std::sync::Mutex::new(file)),
            Err(e) => {
                eprintln!("LOG_OUTPUT_PATHS: cannot open {path}: {e}; logging to stderr");
                BoxMakeWriter::new(std::io::stderr)
            }
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
