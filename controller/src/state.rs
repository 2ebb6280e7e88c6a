//! Cluster state: kube-runtime reflectors over every kind the controllers
//! read, and a change counter controllers wait on. Reads come from these
//! caches, never from list calls, so a pass over 10k pods costs no API call.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::{EC2NodeClass, NodeClaim, NodePool};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which kinds changed since a controller last looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Bumped on every pod event.
    pub pods: u64,
    /// Bumped on every event of any other kind.
    pub other: u64,
}

/// Read-only caches of the cluster, shared by every controller.
#[derive(Clone)]
pub struct ClusterState {
    /// Every pod.
    pub pods: Store<Pod>,
    /// Every node.
    pub nodes: Store<Node>,
    /// Every NodeClaim.
    pub claims: Store<NodeClaim>,
    /// Every NodePool.
    pub pools: Store<NodePool>,
    /// Every EC2NodeClass.
    pub classes: Store<EC2NodeClass>,
    /// Every DaemonSet (their pods' requests are overhead on new nodes).
    pub daemonsets: Store<DaemonSet>,
    changes: watch::Receiver<Changes>,
}

/// The reflector tasks; dropping it stops them.
pub struct Reflectors {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Reflectors {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn reflect<K>(
    client: &kube::Client,
    changes: Arc<watch::Sender<Changes>>,
    is_pod: bool,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        // Managed fields are a large share of every object and never read.
        .modify(|object| object.managed_fields_mut().clear());
    let stream = reflector::reflector(writer, stream);
    tasks.push(tokio::spawn(async move {
        stream
            .for_each(|event| {
                if let Err(e) = &event {
                    tracing::warn!(kind = %K::kind(&K::DynamicType::default()), error = %e, "watch failed; retrying");
                }
                changes.send_modify(|c| {
                    if is_pod {
                        c.pods += 1;
                    } else {
                        c.other += 1;
                    }
                });
                async {}
            })
            .await;
    }));
    reader
}

impl ClusterState {
    /// Starts one reflector per kind.
    pub fn start(client: &kube::Client) -> (Self, Reflectors) {
        let (sender, changes) = watch::channel(Changes::default());
        let sender = Arc::new(sender);
        let mut tasks = Vec::new();
        let state = ClusterState {
            pods: reflect(client, sender.clone(), true, &mut tasks),
            nodes: reflect(client, sender.clone(), false, &mut tasks),
            claims: reflect(client, sender.clone(), false, &mut tasks),
            pools: reflect(client, sender.clone(), false, &mut tasks),
            classes: reflect(client, sender.clone(), false, &mut tasks),
            daemonsets: reflect(client, sender, false, &mut tasks),
            changes,
        };
        (state, Reflectors { tasks })
    }

    /// Waits until every cache has its initial list.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.pods.wait_until_ready().await?;
        self.nodes.wait_until_ready().await?;
        self.claims.wait_until_ready().await?;
        self.pools.wait_until_ready().await?;
        self.classes.wait_until_ready().await?;
        self.daemonsets.wait_until_ready().await
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<Changes> {
        self.changes.clone()
    }

    /// The NodeClaim by name.
    pub fn claim(&self, name: &str) -> Option<Arc<NodeClaim>> {
        self.claims.get(&reflector::ObjectRef::new(name))
    }

    /// The Node by name.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(&reflector::ObjectRef::new(name))
    }

    /// The NodePool by name.
    pub fn pool(&self, name: &str) -> Option<Arc<NodePool>> {
        self.pools.get(&reflector::ObjectRef::new(name))
    }

    /// The EC2NodeClass by name.
    pub fn class(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        self.classes.get(&reflector::ObjectRef::new(name))
    }

    /// The Node whose `spec.providerID` is `provider_id`.
    pub fn node_for_provider_id(&self, provider_id: &str) -> Option<Arc<Node>> {
        self.nodes
            .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    }

    /// The NodeClaim whose status names `provider_id`.
    pub fn claim_for_provider_id(&self, provider_id: &str) -> Option<Arc<NodeClaim>> {
        self.claims
            .find(|c| c.status.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    }

    /// Pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    }

    /// The EC2NodeClass a NodePool's template refers to.
    pub fn class_of(&self, pool: &NodePool) -> Option<Arc<EC2NodeClass>> {
        self.class(&pool.spec.template.spec.node_class_ref.name)
    }

    /// The EC2NodeClass a NodeClaim refers to.
    pub fn class_of_claim(&self, claim: &NodeClaim) -> Option<Arc<EC2NodeClass>> {
        self.class(&claim.spec.template.node_class_ref.name)
    }
}

/// `namespace/name` of an object.
pub fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The NodePool a NodeClaim or Node belongs to (its `karpenter.sh/nodepool` label).
pub fn pool_label<K: Resource>(object: &K) -> String {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(karpenter_api::labels::NODEPOOL))
        .cloned()
        .unwrap_or_default()
}

/// Whether the Node's `Ready` condition is `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether the object is being deleted.
pub fn deleting<K: ResourceExt>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}
