//! A pending pod, digested once for the solver: what it requests and where it may run.

use super::resources::Resources;
use k8s_openapi::api::core::v1::{Pod, Toleration};
use karpenter_api::quantity::Quantity;
use karpenter_api::requirements::Requirements;

/// A pod as the solver sees it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`, for results and explanations.
    pub key: String,
    /// Requests: containers summed, at least the largest init container, plus overhead and one pod slot.
    pub requests: Resources,
    /// Node constraints: nodeSelector with each required node-affinity term (OR-ed).
    pub terms: Vec<Requirements>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Host ports the pod binds (`protocol/port`); two pods with one in common never share a node.
    pub host_ports: Vec<String>,
}

fn requests_of(resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>) -> Resources {
    let list = resources.and_then(|r| r.requests.as_ref());
    let parsed: Vec<(String, Quantity)> = list
        .into_iter()
        .flatten()
        .filter_map(|(name, q)| Some((name.clone(), Quantity::try_from(q).ok()?)))
        .collect();
    Resources::from_list(parsed.iter().map(|(n, q)| (n, q)))
}

impl PodInfo {
    /// Digests a pod; `Err` names what cannot be understood (a malformed affinity).
    pub fn from_pod(pod: &Pod) -> Result<Self, String> {
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        let spec = pod.spec.clone().unwrap_or_default();
        let mut requests = Resources::default();
        for container in &spec.containers {
            requests.add(&requests_of(container.resources.as_ref()));
        }
        for init in spec.init_containers.iter().flatten() {
            requests.max(&requests_of(init.resources.as_ref()));
        }
        if let Some(overhead) = &spec.overhead {
            let parsed: Vec<(String, Quantity)> = overhead
                .iter()
                .filter_map(|(n, q)| Some((n.clone(), Quantity::try_from(q).ok()?)))
                .collect();
            requests.add(&Resources::from_list(parsed.iter().map(|(n, q)| (n, q))));
        }
        requests.pods = 1;
        let terms = Requirements::for_pod(&spec).map_err(|e| format!("{key}: {e}"))?;
        let host_ports = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                p.host_port
                    .map(|port| format!("{}/{port}", p.protocol.as_deref().unwrap_or("TCP")))
            })
            .collect();
        Ok(PodInfo {
            key,
            requests,
            terms,
            tolerations: spec.tolerations.unwrap_or_default(),
            host_ports,
        })
    }

    /// True when the pod tolerates every NoSchedule/NoExecute taint given.
    pub fn tolerates(&self, taints: &[k8s_openapi::api::core::v1::Taint]) -> bool {
        taints
            .iter()
            .filter(|t| t.effect != "PreferNoSchedule")
            .all(|taint| self.tolerations.iter().any(|t| tolerates(t, taint)))
    }
}

/// Kubernetes' toleration match.
pub fn tolerates(toleration: &Toleration, taint: &k8s_openapi::api::core::v1::Taint) -> bool {
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().unwrap_or_default();
    let exists = toleration.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists && effect_ok;
    }
    let value_ok = exists
        || toleration.value.as_deref().unwrap_or_default()
            == taint.value.as_deref().unwrap_or_default();
    key == taint.key && value_ok && effect_ok
}
