//! Whether a pod fits a node, with kube-scheduler's filters and reasons:
//! node readiness and cordons, taints and tolerations, nodeSelector and required
//! node affinity, resource requests (incl. extended resources and pod count),
//! required inter-pod (anti-)affinity and `DoNotSchedule` topology spread.
//! Pure functions over JSON objects; the scheduler controller calls them.

use karpenter_api::quantity::Quantity;
use karpenter_api::requirements::{Requirement, Requirements};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Resource name -> amount.
pub(crate) type Resources = BTreeMap<String, Quantity>;

/// A node, with what every check needs parsed once per pass.
pub(crate) struct NodeInfo<'a> {
    /// The Node object.
    pub(crate) node: &'a Value,
    /// `metadata.name`.
    pub(crate) name: &'a str,
    labels: BTreeMap<String, String>,
    allocatable: Resources,
    ready: bool,
}

impl<'a> NodeInfo<'a> {
    /// Parses a node.
    pub(crate) fn new(node: &'a Value) -> Self {
        let labels = node["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        NodeInfo {
            node,
            name: node["metadata"]["name"].as_str().unwrap_or_default(),
            labels,
            allocatable: allocatable(node),
            ready: is_ready(node),
        }
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// A pod, with its requests and node constraints parsed once.
pub(crate) struct PodInfo<'a> {
    /// The Pod object.
    pub(crate) pod: &'a Value,
    requests: Resources,
    /// OR-ed node-affinity terms (with nodeSelector); `None` when unparseable.
    terms: Option<Vec<Requirements>>,
}

impl<'a> PodInfo<'a> {
    /// Parses a pod.
    pub(crate) fn new(pod: &'a Value) -> Self {
        let terms =
            serde_json::from_value::<k8s_openapi::api::core::v1::PodSpec>(pod["spec"].clone())
                .ok()
                .and_then(|spec| {
                    Requirements::for_pod(spec.node_selector.as_ref(), spec.affinity.as_ref()).ok()
                });
        PodInfo {
            pod,
            requests: pod_requests(pod),
            terms,
        }
    }

    /// nodeSelector and required node affinity (terms OR-ed) against the node's labels.
    pub(crate) fn matches_node(&self, node: &NodeInfo) -> bool {
        self.terms.as_ref().is_some_and(|terms| {
            terms.iter().any(|term| {
                term.iter()
                    .all(|req| label_satisfies(req, node.labels.get(req.key())))
            })
        })
    }
}

/// The cluster as the scheduler sees it in one pass.
pub(crate) struct Snapshot<'a> {
    /// Every node.
    pub(crate) nodes: Vec<NodeInfo<'a>>,
    /// Pods that occupy a node (bound, not finished), by node name.
    pods_by_node: HashMap<String, Vec<&'a Value>>,
    /// What those pods request, by node name.
    used: HashMap<String, Resources>,
}

impl<'a> Snapshot<'a> {
    /// Builds the view from every node and every pod.
    pub(crate) fn new(
        nodes: &'a [std::sync::Arc<Value>],
        pods: &'a [std::sync::Arc<Value>],
    ) -> Self {
        let mut snapshot = Snapshot {
            nodes: nodes.iter().map(|n| NodeInfo::new(n)).collect(),
            pods_by_node: HashMap::new(),
            used: HashMap::new(),
        };
        for pod in pods.iter().map(|p| p.as_ref()) {
            if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
                && !is_finished(pod)
            {
                snapshot.place(pod, &pod_requests(pod), node);
            }
        }
        snapshot
    }

    /// Records a pod on a node (at build time, and for placements made in a pass).
    pub(crate) fn place(&mut self, pod: &'a Value, requests: &Resources, node: &str) {
        self.pods_by_node
            .entry(node.to_string())
            .or_default()
            .push(pod);
        add(self.used.entry(node.to_string()).or_default(), requests);
    }

    /// Pods on a node.
    pub(crate) fn pods_on(&self, node: &str) -> &[&'a Value] {
        self.pods_by_node
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The share of a node's CPU its pods request (for least-allocated scoring).
    pub(crate) fn cpu_load(&self, node: &NodeInfo) -> f64 {
        let capacity = node
            .allocatable
            .get("cpu")
            .map(Quantity::as_f64)
            .unwrap_or(0.0)
            .max(0.001);
        let used = self
            .used
            .get(node.name)
            .and_then(|u| u.get("cpu"))
            .map(Quantity::as_f64)
            .unwrap_or(0.0);
        used / capacity
    }
}

impl PodInfo<'_> {
    /// The pod's resource requests.
    pub(crate) fn requests(&self) -> &Resources {
        &self.requests
    }
}

/// A pod that no longer holds resources.
pub(crate) fn is_finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// The resources a pod requests: the sum over containers, at least the largest
/// init container, plus overhead; and one `pods` slot.
pub(crate) fn pod_requests(pod: &Value) -> Resources {
    let mut total = Resources::new();
    let requests_of = |c: &Value| -> Resources {
        c["resources"]["requests"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), quantity(v)?)))
            .collect()
    };
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        add(&mut total, &requests_of(container));
    }
    for init in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for (name, q) in requests_of(init) {
            let entry = total.entry(name).or_insert(Quantity::ZERO);
            if q > *entry {
                *entry = q;
            }
        }
    }
    if let Some(overhead) = pod["spec"]["overhead"].as_object() {
        let overhead: Resources = overhead
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), quantity(v)?)))
            .collect();
        add(&mut total, &overhead);
    }
    total.insert("pods".into(), Quantity::from_units(1));
    total
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn add(total: &mut Resources, more: &Resources) {
    for (name, q) in more {
        let entry = total.entry(name.clone()).or_insert(Quantity::ZERO);
        *entry = entry.checked_add(*q).unwrap_or(*entry);
    }
}

/// A node's allocatable resources (capacity when allocatable is absent).
pub(crate) fn allocatable(node: &Value) -> Resources {
    let source = if node["status"]["allocatable"].is_object() {
        &node["status"]["allocatable"]
    } else {
        &node["status"]["capacity"]
    };
    source
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), quantity(v)?)))
        .collect()
}

/// True when the node's Ready condition is True.
pub(crate) fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Why a pod cannot go to a node (kube-scheduler's wording), or `None` when it fits.
pub(crate) fn unfit_reason(pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> Option<String> {
    if !node.ready {
        return Some("node(s) were not ready".into());
    }
    if node.node["spec"]["unschedulable"].as_bool() == Some(true)
        && !tolerates_key(pod.pod, "node.kubernetes.io/unschedulable")
    {
        return Some("node(s) were unschedulable".into());
    }
    if let Some(taint) = untolerated_taint(pod.pod, node.node) {
        return Some(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint["key"].as_str().unwrap_or_default(),
            taint["value"].as_str().unwrap_or_default()
        ));
    }
    if !pod.matches_node(node) {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let used = snapshot.used.get(node.name);
    for (resource, want) in &pod.requests {
        if want.is_zero() {
            continue;
        }
        let have = node
            .allocatable
            .get(resource)
            .copied()
            .unwrap_or(Quantity::ZERO);
        let taken = used
            .and_then(|u| u.get(resource))
            .copied()
            .unwrap_or(Quantity::ZERO);
        if taken.checked_add(*want).is_none_or(|total| total > have) {
            return Some(if resource == "pods" {
                "Too many pods".into()
            } else {
                format!("Insufficient {resource}")
            });
        }
    }
    if let Some(reason) = inter_pod_affinity(pod.pod, node, snapshot) {
        return Some(reason);
    }
    if !topology_spread_ok(pod, node, snapshot) {
        return Some("node(s) didn't match pod topology spread constraints".into());
    }
    None
}

fn tolerations(pod: &Value) -> &[Value] {
    pod["spec"]["tolerations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn tolerates_key(pod: &Value, key: &str) -> bool {
    tolerations(pod)
        .iter()
        .any(|t| t["operator"] == "Exists" && (t["key"].is_null() || t["key"] == key))
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate.
fn untolerated_taint<'a>(pod: &Value, node: &'a Value) -> Option<&'a Value> {
    node["spec"]["taints"].as_array()?.iter().find(|taint| {
        matches!(taint["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
            && !tolerations(pod).iter().any(|t| tolerates(t, taint))
    })
}

/// Kubernetes' toleration match: key (empty with Exists matches all), value, effect.
pub(crate) fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect_ok = toleration["effect"]
        .as_str()
        .is_none_or(|e| e.is_empty() || Some(e) == taint["effect"].as_str());
    let key = toleration["key"].as_str().unwrap_or_default();
    let exists = toleration["operator"] == "Exists";
    if key.is_empty() {
        return exists && effect_ok;
    }
    let value_ok = exists
        || toleration["value"].as_str().unwrap_or_default()
            == taint["value"].as_str().unwrap_or_default();
    key == taint["key"].as_str().unwrap_or_default() && value_ok && effect_ok
}

/// nodeSelector and required node affinity of a pod (or pod template) against a node.
pub(crate) fn matches_node_affinity(pod: &Value, node: &Value) -> bool {
    PodInfo::new(pod).matches_node(&NodeInfo::new(node))
}

fn label_satisfies(req: &Requirement, value: Option<&String>) -> bool {
    match value {
        Some(v) => req.has(v),
        None => matches!(req.operator(), "NotIn" | "DoesNotExist"),
    }
}

/// Kubernetes `LabelSelector` (`matchLabels` and `matchExpressions`) against labels.
/// An empty selector matches everything; a missing one matches nothing.
pub(crate) fn selector_matches(selector: &Value, labels: &Value) -> bool {
    if selector.is_null() {
        return false;
    }
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str() {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

/// Pods matching a term's selector in the term's namespaces (the pod's own by default).
fn term_matches(term: &Value, pod: &Value, other: &Value) -> bool {
    let own_ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let namespaces: Vec<&str> = term["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let ns_ok = if namespaces.is_empty() && term["namespaceSelector"].is_null() {
        other["metadata"]["namespace"].as_str() == Some(own_ns)
    } else {
        term["namespaceSelector"].is_object()
            || namespaces.contains(&other["metadata"]["namespace"].as_str().unwrap_or_default())
    };
    ns_ok && selector_matches(&term["labelSelector"], &other["metadata"]["labels"])
}

/// Required pod affinity and anti-affinity, by topology domain.
fn inter_pod_affinity(pod: &Value, node: &NodeInfo, snapshot: &Snapshot) -> Option<String> {
    let affinity = &pod["spec"]["affinity"];
    if affinity["podAffinity"].is_null() && affinity["podAntiAffinity"].is_null() {
        return None;
    }
    let in_domain = |term: &Value| -> (bool, bool) {
        let key = term["topologyKey"].as_str().unwrap_or_default();
        let domain = node.label(key);
        let mut here = false;
        let mut anywhere = false;
        for other_node in &snapshot.nodes {
            let matched = snapshot
                .pods_on(other_node.name)
                .iter()
                .any(|p| term_matches(term, pod, p));
            if matched {
                anywhere = true;
                if domain.is_some() && other_node.label(key) == domain {
                    here = true;
                }
            }
        }
        (here, anywhere)
    };
    for term in affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (here, anywhere) = in_domain(term);
        // The first pod of a group that selects itself may go anywhere.
        let self_match = !anywhere && term_matches(term, pod, pod);
        if !here && !self_match {
            return Some("node(s) didn't match pod affinity rules".into());
        }
    }
    for term in affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if in_domain(term).0 {
            return Some("node(s) didn't match pod anti-affinity rules".into());
        }
    }
    None
}

/// `whenUnsatisfiable: DoNotSchedule` constraints: placing the pod must keep
/// (count in the node's domain + 1) - (smallest count over eligible domains) <= maxSkew.
fn topology_spread_ok(pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> bool {
    for constraint in pod.pod["spec"]["topologySpreadConstraints"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if constraint["whenUnsatisfiable"]
            .as_str()
            .unwrap_or("DoNotSchedule")
            != "DoNotSchedule"
        {
            continue;
        }
        let key = constraint["topologyKey"].as_str().unwrap_or_default();
        let Some(domain) = node.label(key) else {
            return false;
        };
        let max_skew = constraint["maxSkew"].as_i64().unwrap_or(1);
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for candidate in &snapshot.nodes {
            let Some(d) = candidate.label(key) else {
                continue;
            };
            if !pod.matches_node(candidate) {
                continue;
            }
            let matching = snapshot
                .pods_on(candidate.name)
                .iter()
                .filter(|p| p["metadata"]["namespace"] == pod.pod["metadata"]["namespace"])
                .filter(|p| {
                    selector_matches(&constraint["labelSelector"], &p["metadata"]["labels"])
                })
                .count() as i64;
            *counts.entry(d).or_insert(0) += matching;
        }
        let min = counts.values().copied().min().unwrap_or(0);
        let here = counts.get(domain).copied().unwrap_or(0);
        if here + 1 - min > max_skew {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn node(name: &str, zone: &str, cpu: &str, extra: Value) -> Arc<Value> {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "3"}, "conditions": [{"type": "Ready", "status": "True"}]}
        });
        json_patch::merge(&mut n, &extra);
        Arc::new(n)
    }

    fn pod(name: &str, cpu: &str, extra: Value) -> Arc<Value> {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": "Pending"}
        });
        json_patch::merge(&mut p, &extra);
        Arc::new(p)
    }

    fn reason(
        p: &Arc<Value>,
        n: &Arc<Value>,
        nodes: &[Arc<Value>],
        pods: &[Arc<Value>],
    ) -> Option<String> {
        let snapshot = Snapshot::new(nodes, pods);
        unfit_reason(&PodInfo::new(p), &NodeInfo::new(n), &snapshot)
    }

    #[test]
    fn resources_and_pod_count() {
        let n = node("n1", "a", "2", json!({}));
        let nodes = vec![n.clone()];
        let running = pod("r", "1500m", json!({"spec": {"nodeName": "n1"}}));
        assert_eq!(
            reason(
                &pod("p", "500m", json!({})),
                &n,
                &nodes,
                std::slice::from_ref(&running)
            ),
            None
        );
        assert_eq!(
            reason(
                &pod("p", "600m", json!({})),
                &n,
                &nodes,
                std::slice::from_ref(&running)
            )
            .as_deref(),
            Some("Insufficient cpu")
        );
        let three: Vec<_> = (0..3)
            .map(|i| pod(&format!("r{i}"), "0", json!({"spec": {"nodeName": "n1"}})))
            .collect();
        assert_eq!(
            reason(&pod("p", "0", json!({})), &n, &nodes, &three).as_deref(),
            Some("Too many pods")
        );
        let gpu = pod(
            "g",
            "0",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}),
        );
        assert_eq!(
            reason(&gpu, &n, &nodes, &[]).as_deref(),
            Some("Insufficient nvidia.com/gpu")
        );
    }

    #[test]
    fn readiness_cordons_and_taints() {
        let not_ready = node(
            "n",
            "a",
            "4",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        assert_eq!(
            reason(
                &pod("p", "1", json!({})),
                &not_ready,
                std::slice::from_ref(&not_ready),
                &[]
            )
            .as_deref(),
            Some("node(s) were not ready")
        );
        let cordoned = node("n", "a", "4", json!({"spec": {"unschedulable": true}}));
        assert_eq!(
            reason(
                &pod("p", "1", json!({})),
                &cordoned,
                std::slice::from_ref(&cordoned),
                &[]
            )
            .as_deref(),
            Some("node(s) were unschedulable")
        );
        let tainted = node(
            "n",
            "a",
            "4",
            json!({"spec": {"taints": [{"key": "karpenter.sh/unregistered", "effect": "NoExecute"}]}}),
        );
        assert_eq!(
            reason(
                &pod("p", "1", json!({})),
                &tainted,
                std::slice::from_ref(&tainted),
                &[]
            )
            .as_deref(),
            Some("node(s) had untolerated taint {karpenter.sh/unregistered: }")
        );
        let tolerant = pod(
            "p",
            "1",
            json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
        );
        assert_eq!(
            reason(&tolerant, &tainted, std::slice::from_ref(&tainted), &[]),
            None
        );
        let gpu_taint = node(
            "g",
            "a",
            "4",
            json!({"spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}}),
        );
        let tolerates_gpu = pod(
            "p",
            "1",
            json!({"spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            reason(
                &tolerates_gpu,
                &gpu_taint,
                std::slice::from_ref(&gpu_taint),
                &[]
            ),
            None
        );
    }

    #[test]
    fn node_selector_and_affinity() {
        let n = node("n", "us-east-1a", "4", json!({}));
        let by_selector = pod(
            "p",
            "1",
            json!({"spec": {"nodeSelector": {"topology.kubernetes.io/zone": "us-east-1b"}}}),
        );
        assert_eq!(
            reason(&by_selector, &n, std::slice::from_ref(&n), &[]).as_deref(),
            Some("node(s) didn't match Pod's node affinity/selector")
        );
        let by_affinity = pod(
            "p",
            "1",
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]}]},
                {"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "DoesNotExist"}]}
            ]}}}}}),
        );
        assert_eq!(
            reason(&by_affinity, &n, std::slice::from_ref(&n), &[]),
            None,
            "second term matches"
        );
    }

    #[test]
    fn anti_affinity_and_topology_spread() {
        let nodes = vec![
            node("n1", "a", "8", json!({})),
            node("n2", "b", "8", json!({})),
        ];
        let anti = json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}}}});
        let existing = pod("e", "0", json!({"spec": {"nodeName": "n1"}}));
        assert_eq!(
            reason(
                &pod("p", "0", anti.clone()),
                &nodes[0],
                &nodes,
                std::slice::from_ref(&existing)
            )
            .as_deref(),
            Some("node(s) didn't match pod anti-affinity rules")
        );
        assert_eq!(
            reason(
                &pod("p", "0", anti),
                &nodes[1],
                &nodes,
                std::slice::from_ref(&existing)
            ),
            None
        );

        let spread = json!({"spec": {"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}
        ]}});
        assert_eq!(
            reason(
                &pod("p", "0", spread.clone()),
                &nodes[0],
                &nodes,
                std::slice::from_ref(&existing)
            )
            .as_deref(),
            Some("node(s) didn't match pod topology spread constraints")
        );
        assert_eq!(
            reason(&pod("p", "0", spread), &nodes[1], &nodes, &[existing]),
            None
        );

        let affinity = json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "topology.kubernetes.io/zone"}
        ]}}}});
        // The first pod of a self-selecting group goes anywhere; later ones follow it.
        assert_eq!(
            reason(&pod("p", "0", affinity.clone()), &nodes[1], &nodes, &[]),
            None
        );
        let first = pod("f", "0", json!({"spec": {"nodeName": "n1"}}));
        assert_eq!(
            reason(&pod("p", "0", affinity), &nodes[1], &nodes, &[first]).as_deref(),
            Some("node(s) didn't match pod affinity rules")
        );
    }

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(selector_matches(&json!({}), &labels));
        assert!(!selector_matches(&Value::Null, &labels));
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
            &labels
        ));
    }
}
