//! # kubesim
//!
//! An embedded Kubernetes control plane that real clients accept: an in-memory
//! API server speaking the Kubernetes REST protocol (discovery, CRUD, list with
//! selectors and paging, watch with resume and `410 Gone`, JSON / merge /
//! strategic merge patches, finalizers, owner-reference garbage collection,
//! CustomResourceDefinitions with structural defaulting and validation).
//!
//! Use it in-process, with no sockets, through `kube::Client`:
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! let sim = kubesim::Kubesim::new();
//! let client = sim.client();
//! let maps: Api<ConfigMap> = Api::namespaced(client, "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! maps.create(&PostParams::default(), &cm).await?;
//! assert!(maps.get("settings").await?.metadata.uid.is_some());
//! # Ok(()) }
//! ```
//!
//! or over TCP with TLS and a bearer token, for kubectl and subprocesses
//! ([`Kubesim::serve`] writes a kubeconfig). See the crate README for what it
//! does not do compared with a real API server.

mod admission;
mod api;
mod apply;
pub mod cel;
pub mod controllers;
pub mod faults;
pub mod nodes;
pub mod patch;
pub mod resources;
mod schema;
pub mod selectors;
pub mod serve;
pub mod status;
pub mod store;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use std::convert::Infallible;
use std::sync::Arc;

pub use controllers::{ControllerOptions, Controllers};
pub use faults::Faults;
pub use nodes::NodeRegistration;
pub use serve::{ServeOptions, Served};

/// The body type of every response.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The control plane: store, kind registry and the API server on top.
#[derive(Clone)]
pub struct Kubesim {
    pub(crate) inner: Arc<Shared>,
}

/// State shared by every request handler.
pub(crate) struct Shared {
    pub(crate) store: store::Store,
    pub(crate) registry: resources::Registry,
    /// Set once the kubelet stand-in runs: pods on nodes are then deleted gracefully.
    pub(crate) kubelet_running: std::sync::atomic::AtomicBool,
    /// Serialises evictions: the budget check and the delete happen as one step,
    /// as the real API server achieves with optimistic concurrency on the PDB.
    pub(crate) evictions: std::sync::Mutex<()>,
}

impl Default for Kubesim {
    fn default() -> Self {
        Self::new()
    }
}

impl Kubesim {
    /// A control plane with the built-in kinds and the namespaces every cluster has
    /// (`default`, `kube-system`, `kube-public`, `kube-node-lease`).
    pub fn new() -> Self {
        Self::with_store(store::Store::default())
    }

    /// Like [`Kubesim::new`], keeping only the last `events` changes for watches to
    /// resume from (older resourceVersions get `410 Gone`, as after etcd compaction).
    pub fn with_watch_history(events: usize) -> Self {
        Self::with_store(store::Store::with_history(events))
    }

    fn with_store(store: store::Store) -> Self {
        let sim = Kubesim {
            inner: Arc::new(Shared {
                store,
                registry: resources::Registry::with_built_ins(),
                kubelet_running: std::sync::atomic::AtomicBool::new(false),
                evictions: std::sync::Mutex::new(()),
            }),
        };
        let namespaces = sim
            .inner
            .registry
            .get("", "v1", "namespaces")
            .expect("built-in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let ns = serde_json::json!({"metadata": {"name": name}, "status": {"phase": "Active"}});
            sim.inner
                .store
                .create(&namespaces, "", ns)
                .expect("fresh store");
        }
        sim
    }

    /// A `kube::Client` that calls this control plane in-process (no sockets).
    pub fn client(&self) -> kube::Client {
        let sim = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let sim = sim.clone();
            async move { Ok::<_, Infallible>(sim.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Answers one API request.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        api::handle(self, request).await
    }

    /// Whether deleting this pod waits for the kubelet (bound, running, kubelet on).
    pub(crate) fn graceful_pod_delete(&self, pod: &serde_json::Value) -> bool {
        self.inner
            .kubelet_running
            .load(std::sync::atomic::Ordering::SeqCst)
            && pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
            && !matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
    }

    /// The object store (for simulators that act as controllers in-process).
    pub fn store(&self) -> &store::Store {
        &self.inner.store
    }

    /// The kinds served.
    pub fn registry(&self) -> &resources::Registry {
        &self.inner.registry
    }
}
