//! A cached pod as the engine's [`PodInfo`]: the controller knows its cache's
//! shape; the engine only the facts it is given.

use crate::state::{CachedContainer, CachedPod, CachedPodSpec};
use karpenter_scheduling::{InvalidPod, PodFacts, PodInfo, Resources};

/// A container's requests.
fn container_requests(container: &CachedContainer) -> Resources {
    Resources::from_api(
        container
            .resources
            .iter()
            .flat_map(|r| r.requests.iter().map(|(n, q)| (n, q))),
    )
}

/// A container's limits.
fn container_limits(container: &CachedContainer) -> Resources {
    Resources::from_api(
        container
            .resources
            .iter()
            .flat_map(|r| r.limits.iter().map(|(n, q)| (n, q))),
    )
}

/// Containers summed, or an init container's amount when larger, plus the
/// pod overhead: how Kubernetes sizes a pod from its containers.
fn effective(spec: &CachedPodSpec, of: fn(&CachedContainer) -> Resources) -> Resources {
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&of(container));
    }
    for init in spec.init_containers.iter().flatten() {
        total.max(&of(init));
    }
    total.add(&Resources::from_api(spec.overhead.iter().flatten()));
    total
}

/// A pod's effective requests, and one pod slot.
pub fn requests_of(spec: &CachedPodSpec) -> Resources {
    let mut requests = effective(spec, container_requests);
    requests.pods = 1;
    requests
}

/// A pod's effective limits, summed as requests are (for the node metrics).
pub fn limits_of(spec: &CachedPodSpec) -> Resources {
    effective(spec, container_limits)
}

/// Digests a cached pod for the engine; `Err` names what cannot be understood.
pub fn pod_info(pod: &CachedPod) -> Result<PodInfo, InvalidPod> {
    let empty = CachedPodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let facts = PodFacts {
        namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
        name: pod.metadata.name.as_deref().unwrap_or(""),
        labels: pod.metadata.labels.as_ref(),
        node_selector: spec.node_selector.as_ref(),
        affinity: spec.affinity.as_ref(),
        tolerations: spec.tolerations.as_deref().unwrap_or_default(),
        topology_spread_constraints: spec
            .topology_spread_constraints
            .as_deref()
            .unwrap_or_default(),
    };
    let ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten());
    PodInfo::digest(facts, requests_of(spec), ports)
}
