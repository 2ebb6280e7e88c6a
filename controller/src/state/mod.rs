//! Cluster state: kube-runtime reflectors over every kind the controllers
//! read, and a change counter controllers wait on. Reads come from these
//! caches, never from list calls, so a pass over 10k pods costs no API call.
//!
//! - `changes`: what changed, and waiters that settle bursts.
//! - `activity`: when each node's pods last changed.
//! - `index`: Nodes and NodeClaims by provider ID.
//! - `pod`: the pod as cached, only the fields controllers read.
//! - `trim`: the fields no controller reads, dropped before caching.

mod activity;
mod changes;
mod index;
mod pod;
mod trim;

pub use activity::NodeActivity;
pub use changes::{ChangeWaiter, Changes, Interest};
use index::{ProviderIdIndex, claim_provider_id, node_provider_id};
pub use pod::{
    CachedContainer, CachedPod, CachedPodSpec, CachedPodStatus, CachedResources, CachedVolume,
};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
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

/// Read-only caches of the cluster, shared by every controller.
#[derive(Clone)]
pub struct ClusterState {
    /// Every pod, as the controllers read it.
    pub pods: Store<CachedPod>,
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
    /// When each node's pods last changed.
    pub activity: NodeActivity,
    nodes_by_provider_id: ProviderIdIndex<Node>,
    claims_by_provider_id: ProviderIdIndex<NodeClaim>,
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

/// What a reflector tells about each event besides caching it.
type Observer<K> = Box<dyn Fn(&watcher::Event<K>) + Send + Sync>;

/// How one kind's reflector works: what it drops from each object before
/// caching it, which counter its events bump, and what else it keeps up to
/// date from its events (a provider-ID index, node activity), if anything.
struct Reporting<K> {
    trim: fn(&mut K),
    is_pod: bool,
    observer: Option<Observer<K>>,
}

impl<K: Resource> Reporting<K> {
    fn plain() -> Self {
        Reporting {
            trim: trim::metadata,
            is_pod: false,
            observer: None,
        }
    }
}

/// An observer that hands each event to `record` on `target`.
fn observer<T, K>(target: T, record: fn(&T, &watcher::Event<K>)) -> Observer<K>
where
    T: Send + Sync + 'static,
    K: 'static,
{
    Box::new(move |event| record(&target, event))
}

fn reflect<K>(
    client: &kube::Client,
    changes: Arc<watch::Sender<Changes>>,
    reporting: Reporting<K>,
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
        .modify(reporting.trim);
    let stream = reflector::reflector(writer, stream);
    tasks.push(tokio::spawn(async move {
        stream
            .for_each(|event| {
                match &event {
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&K::DynamicType::default()), error = %e, "watch failed; retrying");
                    }
                    Ok(event) => {
                        if let Some(observe) = &reporting.observer {
                            observe(event);
                        }
                    }
                }
                changes.send_modify(|c| {
                    if reporting.is_pod {
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
        let nodes_by_provider_id = ProviderIdIndex::new(node_provider_id);
        let claims_by_provider_id = ProviderIdIndex::new(claim_provider_id);
        let activity = NodeActivity::default();
        let pods = Reporting {
            trim: trim::pod,
            is_pod: true,
            observer: Some(observer(activity.clone(), NodeActivity::record)),
        };
        let nodes = Reporting {
            trim: trim::node,
            is_pod: false,
            observer: Some(observer(
                nodes_by_provider_id.clone(),
                ProviderIdIndex::record,
            )),
        };
        let claims = Reporting {
            trim: trim::claim,
            is_pod: false,
            observer: Some(observer(
                claims_by_provider_id.clone(),
                ProviderIdIndex::record,
            )),
        };
        let state = ClusterState {
            pods: reflect(client, sender.clone(), pods, &mut tasks),
            nodes: reflect(client, sender.clone(), nodes, &mut tasks),
            claims: reflect(client, sender.clone(), claims, &mut tasks),
            pools: reflect(client, sender.clone(), Reporting::plain(), &mut tasks),
            classes: reflect(client, sender.clone(), Reporting::plain(), &mut tasks),
            daemonsets: reflect(client, sender, Reporting::plain(), &mut tasks),
            activity,
            nodes_by_provider_id,
            claims_by_provider_id,
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

    /// A waiter for the changes `interest` names.
    pub fn waiter(&self, interest: Interest) -> ChangeWaiter {
        ChangeWaiter::new(self.changes.clone(), interest)
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
        self.nodes_by_provider_id.find(&self.nodes, provider_id)
    }

    /// The NodeClaim whose status names `provider_id`.
    pub fn claim_for_provider_id(&self, provider_id: &str) -> Option<Arc<NodeClaim>> {
        self.claims_by_provider_id.find(&self.claims, provider_id)
    }

    /// Pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> Vec<Arc<CachedPod>> {
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

/// The value of the object's label `key` (empty when it has none).
pub fn label<K: Resource>(object: &K, key: &str) -> String {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

/// The NodePool a NodeClaim or Node belongs to (its `karpenter.sh/nodepool` label).
pub fn pool_label<K: Resource>(object: &K) -> String {
    label(object, karpenter_api::labels::NODEPOOL)
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
