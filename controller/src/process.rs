//! The controller as a process, whichever cloud it runs with: settings
//! checked, logging set up, connections to the API server made, metrics and
//! probes served, and the controllers run under leader election until SIGTERM.
//! `karpenter-controller` runs it with EC2; `karpenter-sim run` (the
//! simulation crate's binary) with the simulated EC2.

use crate::api_client::{self, RateLimit};
use crate::cloud::CloudProvider;
use crate::cloud::aws::cluster;
use crate::cloud::aws::sdk::load_config;
use crate::controllers::interruption::{QueueError, SqsQueue};
use crate::endpoints::{self, Health};
use crate::metrics::Metrics;
use crate::runtime::{self, Parts, RunError};
use crate::settings::{Settings, SettingsError};
use std::future::Future;
use std::sync::Arc;

/// Why the process could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A setting is invalid; fix the environment or flags.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("no Kubernetes configuration (kubeconfig or in-cluster): {0}")]
    KubeConfig(kube::config::InferConfigError),
    /// A client for the API server could not be built (bad TLS material, say).
    #[error("Kubernetes client: {0}")]
    KubeClient(kube::Error),
    /// The metrics or probe port could not be bound.
    #[error("serving metrics and probes: {0}")]
    Endpoints(std::io::Error),
    /// The interruption queue named by `INTERRUPTION_QUEUE` is not reachable.
    #[error("INTERRUPTION_QUEUE {queue}: {source}")]
    Queue {
        /// The queue's name.
        queue: String,
        /// What SQS said.
        source: QueueError,
    },
    /// The cloud provider could not be set up (cluster discovery, region).
    #[error("{0}")]
    Cloud(String),
    /// The controllers stopped with an error.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// The API server connections a process needs.
pub struct Connections {
    /// Rate limited by `KUBE_CLIENT_QPS`/`KUBE_CLIENT_BURST`; every controller's.
    pub client: kube::Client,
    /// Connections of its own for the Lease (see [`Parts::lease_client`]).
    pub lease_client: kube::Client,
    /// The CA this process trusts (a pod's service-account `ca.crt`): the
    /// cluster CA of last resort for the nodes' user data.
    pub trusted_ca: Option<String>,
}

/// Runs `main` on a multi-threaded runtime sized by `CPU_REQUESTS`, as
/// upstream sizes GOMAXPROCS.
pub fn block_on<T>(
    settings: &Settings,
    main: impl Future<Output = Result<T, ProcessError>>,
) -> Result<T, ProcessError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.worker_threads())
        .enable_all()
        .build()
        .map_err(ProcessError::Runtime)?
        .block_on(main)
}

/// Checks the settings, starts logging and connects to the API server in
/// the kubeconfig or the pod's service account.
pub async fn connect(settings: &Settings) -> Result<Connections, ProcessError> {
    settings.validate()?;
    endpoints::init_logging(settings);
    if settings.memory_limit >= 0 {
        tracing::info!(
            memory_limit = settings.memory_limit,
            "MEMORY_LIMIT is upstream's Go garbage-collector target; it has no effect here (no garbage collector): set the pod's memory limit instead"
        );
    }
    let config = kube::Config::infer()
        .await
        .map_err(ProcessError::KubeConfig)?;
    let trusted_ca = config
        .root_cert
        .as_deref()
        .filter(|certs| !certs.is_empty())
        .map(cluster::pem_bundle);
    let lease_client = api_client::client(config.clone()).map_err(ProcessError::KubeClient)?;
    let limit = RateLimit {
        qps: settings.kube_client_qps,
        burst: settings.kube_client_burst,
    };
    let client =
        api_client::client_limited(config, Some(limit)).map_err(ProcessError::KubeClient)?;
    Ok(Connections {
        client,
        lease_client,
        trusted_ca,
    })
}

/// Serves metrics and probes, connects the interruption queue when one is
/// configured, and runs the controllers with `cloud` until SIGTERM or Ctrl-C.
/// `provider` labels the metrics (`aws`, `simulated`).
pub async fn serve<C: CloudProvider + 'static>(
    connections: Connections,
    cloud: C,
    settings: Settings,
    provider: &'static str,
) -> Result<(), ProcessError> {
    let metrics = Arc::new(Metrics::new(provider));
    let health = Arc::new(Health::default());
    let (metrics_at, probes_at) = endpoints::start(&settings, metrics.clone(), health.clone())
        .await
        .map_err(ProcessError::Endpoints)?;
    tracing::info!(%metrics_at, %probes_at, "serving metrics and probes");
    let queue = if settings.interruption_queue.is_empty() {
        None
    } else {
        let config = load_config().await;
        let queue = SqsQueue::connect(&config, &settings.interruption_queue)
            .await
            .map_err(|source| ProcessError::Queue {
                queue: settings.interruption_queue.clone(),
                source,
            })?;
        Some(Arc::new(queue))
    };
    let parts = Parts {
        lease_client: Some(connections.lease_client),
        client: connections.client,
        cloud: Arc::new(cloud),
        queue,
        settings,
        metrics,
        health,
    };
    Ok(runtime::run(parts, stop_signal()).await?)
}

/// Resolves on SIGTERM (how the kubelet stops a pod) or Ctrl-C, so the
/// controller releases its Lease and finishes in-flight work either way.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
