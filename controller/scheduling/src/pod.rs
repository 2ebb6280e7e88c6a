//! A pending pod, digested once for the solver: what it requests, where it may
//! run, the topology rules it owns, and its preferences in the order they are
//! given up when they cannot be met.

use super::resources::Resources;
use super::topology::{Kind, TopologyTerm};
use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, PodAffinityTerm, Taint, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use karpenter_api::requirements::{Requirement, Requirements};
use std::collections::{BTreeMap, BTreeSet};

/// A pod as the solver sees it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`, for results and explanations.
    pub key: String,
    /// Namespace (topology selectors are namespaced).
    pub namespace: String,
    /// Labels (what topology selectors match).
    pub labels: BTreeMap<String, String>,
    /// Requests: containers summed, at least the largest init container, plus overhead and one pod slot.
    pub requests: Resources,
    /// Node constraints: nodeSelector with each required node-affinity term (OR-ed).
    pub terms: Vec<Requirements>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Host ports the pod binds (`protocol/port`); two pods with one in common never share a node.
    pub host_ports: Vec<String>,
    /// Hard topology rules: `DoNotSchedule` spreads, required pod (anti-)affinity.
    pub constraints: Vec<TopologyTerm>,
    /// Soft rules, enforced at first and given up one at a time, in this order
    /// (upstream's): preferred pod affinity, preferred pod anti-affinity (each
    /// heaviest first), preferred node affinity (heaviest first), `ScheduleAnyway`
    /// spreads, and finally tolerating `PreferNoSchedule` taints.
    pub preferences: Vec<Preference>,
}

/// A soft scheduling rule.
#[derive(Debug, Clone)]
pub enum Preference {
    /// A preferred pod (anti-)affinity term or a `ScheduleAnyway` spread.
    Topology(TopologyTerm),
    /// A preferred node-affinity term; only the heaviest one still held applies.
    NodeAffinity(Requirements),
    /// Marks the last step: from here on `PreferNoSchedule` taints are tolerated.
    AvoidPreferNoSchedule,
}

/// A label selector as requirements on pod labels; `None` (a null selector)
/// matches nothing. `Err` names the expression that cannot be read.
pub fn label_selector(
    selector: Option<&LabelSelector>,
) -> Result<Option<Requirements>, InvalidSelector> {
    let Some(selector) = selector else {
        return Ok(None);
    };
    let mut out = Requirements::from_labels(selector.match_labels.iter().flatten());
    for expr in selector.match_expressions.iter().flatten() {
        let values: Vec<&str> = expr.values.iter().flatten().map(String::as_str).collect();
        out.add(
            Requirement::new(&expr.key, &expr.operator, &values)
                .map_err(|e| InvalidSelector(e.0))?,
        );
    }
    Ok(Some(out))
}

/// A label selector the engine cannot read (an unknown operator, a missing value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSelector(pub String);

/// A pod the engine cannot digest; never worth retrying until the pod changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pod}: {reason}")]
pub struct InvalidPod {
    /// `namespace/name`.
    pub pod: String,
    /// What cannot be read, with the field's path where there is one.
    pub reason: String,
}

/// What the engine reads of a pod. The caller builds it from whichever pod
/// type it holds (the controller: its trimmed cache entry), so the engine
/// depends on no client or cache.
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    /// Namespace (`default` when unset).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// Labels.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Required node labels.
    pub node_selector: Option<&'a BTreeMap<String, String>>,
    /// Node and pod (anti-)affinity.
    pub affinity: Option<&'a Affinity>,
    /// Tolerations.
    pub tolerations: &'a [Toleration],
    /// Topology spread constraints.
    pub topology_spread_constraints: &'a [TopologySpreadConstraint],
}

impl PodInfo {
    /// Digests a pod whose effective `requests` (containers summed, at least
    /// the largest init container, plus overhead and one pod slot) and
    /// container `ports` the caller has gathered; `Err` names what cannot
    /// be understood (a malformed affinity or spread).
    pub fn digest<'p>(
        facts: PodFacts<'_>,
        requests: Resources,
        ports: impl IntoIterator<Item = &'p ContainerPort>,
    ) -> Result<Self, InvalidPod> {
        let key = format!("{}/{}", facts.namespace, facts.name);
        let invalid = |reason: String| InvalidPod {
            pod: key.clone(),
            reason,
        };
        let terms =
            Requirements::for_pod(facts.node_selector, facts.affinity).map_err(|e| invalid(e.0))?;
        let host_ports = ports
            .into_iter()
            .filter_map(|p| {
                p.host_port
                    .map(|port| format!("{}/{port}", p.protocol.as_deref().unwrap_or("TCP")))
            })
            .collect();
        let mut info = PodInfo {
            requests,
            namespace: facts.namespace.to_string(),
            labels: facts.labels.cloned().unwrap_or_default(),
            terms,
            tolerations: facts.tolerations.to_vec(),
            host_ports,
            constraints: Vec::new(),
            preferences: Vec::new(),
            key: key.clone(),
        };
        info.digest_topology(facts).map_err(invalid)?;
        Ok(info)
    }

    fn digest_topology(&mut self, facts: PodFacts<'_>) -> Result<(), String> {
        let affinity = facts.affinity;
        // Required terms become constraints; preferred ones, heaviest first,
        // preferences (all of pod affinity's before anti-affinity's).
        let sides = [
            (
                Kind::Affinity,
                affinity.and_then(|a| a.pod_affinity.as_ref()).map(|a| {
                    (
                        &a.required_during_scheduling_ignored_during_execution,
                        &a.preferred_during_scheduling_ignored_during_execution,
                    )
                }),
            ),
            (
                Kind::AntiAffinity,
                affinity
                    .and_then(|a| a.pod_anti_affinity.as_ref())
                    .map(|a| {
                        (
                            &a.required_during_scheduling_ignored_during_execution,
                            &a.preferred_during_scheduling_ignored_during_execution,
                        )
                    }),
            ),
        ];
        for (kind, side) in sides {
            let Some((required, preferred)) = side else {
                continue;
            };
            for term in required.iter().flatten() {
                self.constraints
                    .push(self.affinity_term(kind.clone(), term)?);
            }
            let mut weighted: Vec<_> = preferred.iter().flatten().collect();
            weighted.sort_by_key(|w| std::cmp::Reverse(w.weight));
            for w in weighted {
                let term = self.affinity_term(kind.clone(), &w.pod_affinity_term)?;
                self.preferences.push(Preference::Topology(term));
            }
        }
        let mut node_preferences: Vec<_> = affinity
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .collect();
        node_preferences.sort_by_key(|p| std::cmp::Reverse(p.weight));
        for preferred in node_preferences {
            let mut requirements = Requirements::default();
            for expr in preferred.preference.match_expressions.iter().flatten() {
                requirements.add(Requirement::from_node_selector(expr)?);
            }
            self.preferences
                .push(Preference::NodeAffinity(requirements));
        }
        let mut soft_spreads = Vec::new();
        for (index, spread) in facts.topology_spread_constraints.iter().enumerate() {
            let term = self.spread_term(index, spread)?;
            if spread.when_unsatisfiable == "ScheduleAnyway" {
                soft_spreads.push(Preference::Topology(term));
            } else {
                self.constraints.push(term);
            }
        }
        self.preferences.extend(soft_spreads);
        self.preferences.push(Preference::AvoidPreferNoSchedule);
        Ok(())
    }

    fn affinity_term(&self, kind: Kind, term: &PodAffinityTerm) -> Result<TopologyTerm, String> {
        let mut selector = label_selector(term.label_selector.as_ref()).map_err(|e| e.0)?;
        if let Some(selector) = selector.as_mut() {
            for key in term.match_label_keys.iter().flatten() {
                if let Some(value) = self.labels.get(key) {
                    selector.add(Requirement::new(key, "In", &[value])?);
                }
            }
        }
        // A namespace selector needs namespace labels the solver does not have:
        // it is read as "every namespace" (conservative for anti-affinity).
        let namespaces = if term.namespace_selector.is_some() {
            None
        } else {
            let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
            Some(if listed.is_empty() {
                [self.namespace.clone()].into()
            } else {
                listed
            })
        };
        Ok(TopologyTerm {
            kind,
            key: term.topology_key.clone(),
            selector,
            namespaces,
            node_filter: None,
        })
    }

    fn spread_term(
        &self,
        index: usize,
        spread: &TopologySpreadConstraint,
    ) -> Result<TopologyTerm, String> {
        if spread.max_skew < 1 {
            return Err(format!(
                "spec.topologySpreadConstraints[{index}].maxSkew: must be greater than zero (got {})",
                spread.max_skew
            ));
        }
        let mut selector = label_selector(spread.label_selector.as_ref()).map_err(|e| e.0)?;
        if let Some(selector) = selector.as_mut() {
            for key in spread.match_label_keys.iter().flatten() {
                if let Some(value) = self.labels.get(key) {
                    selector.add(Requirement::new(key, "In", &[value])?);
                }
            }
        }
        let honor_affinity = spread.node_affinity_policy.as_deref() != Some("Ignore");
        let honor_taints = spread.node_taints_policy.as_deref() == Some("Honor");
        Ok(TopologyTerm {
            kind: Kind::Spread {
                max_skew: spread.max_skew,
                min_domains: spread.min_domains.unwrap_or(1),
            },
            key: spread.topology_key.clone(),
            selector,
            namespaces: Some([self.namespace.clone()].into()),
            node_filter: Some(super::topology::NodeFilter {
                terms: honor_affinity.then(|| self.terms.clone()),
                tolerations: honor_taints.then(|| self.tolerations.clone()),
            }),
        })
    }

    /// Restricts every node-affinity term (volume topology: a PVC pins a zone).
    pub fn restrict(&mut self, requirements: &Requirements) {
        for term in &mut self.terms {
            term.extend(requirements);
        }
    }

    /// True when the pod tolerates every NoSchedule/NoExecute taint given, and
    /// `PreferNoSchedule` ones too unless `prefer_ok` says those may be ignored.
    pub fn tolerates(&self, taints: &[Taint], prefer_ok: bool) -> bool {
        taints
            .iter()
            .filter(|t| !(prefer_ok && t.effect == "PreferNoSchedule"))
            .all(|taint| self.tolerations.iter().any(|t| tolerates(t, taint)))
    }
}

/// Kubernetes' toleration match.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
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
