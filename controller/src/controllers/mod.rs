//! Controllers: one per concern, each a pass over the cluster-state caches
//! that writes through `kube::Client`, so it runs the same against a real
//! cluster and against `kubesim`.
//!
//! - [`provisioning`]: pending pods to NodeClaims.
//! - [`lifecycle`]: NodeClaims to launched, registered, initialized nodes.
//! - [`termination`]: deleted NodeClaims and Nodes drained and terminated.
//! - [`disruption`]: nodes no longer needed removed, within budgets.
//! - [`interruption`]: SQS messages to drained and replaced nodes.
//! - [`nodeclass`]: EC2NodeClass status and clean-up.
//! - [`nodepool_status`]: NodePool status (resources, nodes, conditions).
//! - [`garbage`]: instances no NodeClaim owns.
//! - [`pod_metrics`]: how long pods take to start.

pub mod disruption;
pub mod garbage;
pub mod hash;
pub mod interruption;
pub mod lifecycle;
pub mod nodeclass;
pub mod nodepool_status;
pub mod pod_metrics;
pub mod provisioning;
pub mod state_metrics;
pub mod tagging;
pub mod termination;
pub mod writes;

use crate::catalog::KubeletSettings;
use crate::cloud::CloudProvider;
use crate::events::EventSink;
use crate::metrics::SharedMetrics;
use crate::settings::Settings;
use crate::state::ClusterState;
use karpenter_api::v1::EC2NodeClass;
use kube::Resource;
use std::sync::Arc;

/// What every controller works with.
pub struct Context<C> {
    /// The API client.
    pub client: kube::Client,
    /// The caches.
    pub state: ClusterState,
    /// The cloud.
    pub cloud: Arc<C>,
    /// Metrics.
    pub metrics: SharedMetrics,
    /// Settings.
    pub settings: Settings,
    /// Publishes Kubernetes events.
    pub events: EventSink,
    /// The pending pods provisioning could place nowhere.
    pub unplaceable: provisioning::Unplaceable,
    /// When pending pods were first seen and decided.
    pub decisions: provisioning::PodDecisions,
}

impl<C: CloudProvider> Context<C> {
    /// Kubelet settings for nodes of `class` (allocatable arithmetic).
    pub fn kubelet(&self, class: &EC2NodeClass) -> KubeletSettings {
        KubeletSettings::for_class_with(class, self.settings.node_overheads())
    }

    /// Publishes an event on `object` in the background (events are advisory:
    /// a failure is logged, never fatal).
    pub fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        self.events
            .publish(object.object_ref(&()), warning, reason, note);
    }
}
