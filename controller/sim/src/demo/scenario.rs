//! Demo scenarios (`examples/workloads/*.yaml`): workloads (Deployments of
//! one pod shape each, with an optional PodDisruptionBudget) and the steps
//! to play (scale, wait until every pod runs, deliver an interruption,
//! sleep).

use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows.
    pub name: String,
    /// Namespace of the workloads (`default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The workloads, created with zero replicas.
    pub workloads: Vec<Workload>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

fn default_namespace() -> String {
    "default".into()
}

/// One Deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// Deployment name (also its `app` label).
    pub name: String,
    /// CPU request per pod (`500m`).
    pub cpu: String,
    /// Memory request per pod (`1Gi`).
    pub memory: String,
    /// Extra node selector (`karpenter.sh/capacity-type: on-demand`, ...).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Spread over zones (`topologySpreadConstraints`, maxSkew 1).
    #[serde(default)]
    pub zone_spread: bool,
    /// PodDisruptionBudget `maxUnavailable`, if the workload has one.
    #[serde(default)]
    pub max_unavailable: Option<i32>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// Sets the replica counts of the named workloads.
    Scale(BTreeMap<String, i32>),
    /// Waits until every pod runs (and no node is being drained), at most this long.
    WaitRunning(String),
    /// Delivers an interruption for one node: `spot`, `rebalance`,
    /// `scheduled-change` or `stopping`.
    Interrupt(String),
    /// Waits this long.
    Sleep(String),
    /// Waits until every pod runs, no node is left empty and disruption is
    /// done (no node removed or launched for twice `consolidateAfter`), at
    /// most this long.
    WaitScaledIn(String),
}

impl Step {
    /// A one-line description for the progress view.
    pub fn describe(&self) -> String {
        match self {
            Step::Scale(replicas) => {
                let total: i32 = replicas.values().sum();
                format!("scale to {total} pods")
            }
            Step::WaitRunning(_) => "wait until every pod runs".into(),
            Step::Interrupt(kind) => format!("{kind} interruption for one node"),
            Step::Sleep(d) => format!("sleep {d}"),
            Step::WaitScaledIn(_) => "wait until disruption removes what is not needed".into(),
        }
    }
}

/// A duration in a step, with the step named in the error.
pub fn step_duration(text: &str) -> Result<Duration, InvalidScenario> {
    karpenter_api::duration::parse(text)
        .map_err(|e| InvalidScenario(format!("step duration {text:?}: {e}")))
}

/// A scenario that cannot be played; the message names the step or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidScenario(pub String);

impl Workload {
    /// The pod spec of the workload's Deployment.
    pub fn pod_spec(&self) -> serde_json::Value {
        let mut spec = json!({
            "containers": [{"name": "app", "image": "public.ecr.aws/docker/library/nginx:stable",
                "resources": {"requests": {"cpu": self.cpu, "memory": self.memory}}}],
            "nodeSelector": self.node_selector,
        });
        if self.zone_spread {
            spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": self.name}}}]);
        }
        spec
    }
}

impl Scenario {
    /// The replicas per workload after the scale step with the most pods
    /// (the scenario's peak workload).
    pub fn peak(&self) -> BTreeMap<String, i32> {
        let mut replicas: BTreeMap<String, i32> = BTreeMap::new();
        let mut peak = BTreeMap::new();
        for step in &self.steps {
            if let Step::Scale(scale) = step {
                replicas.extend(scale.iter().map(|(k, v)| (k.clone(), *v)));
                if replicas.values().sum::<i32>() > peak.values().sum::<i32>() {
                    peak = replicas.clone();
                }
            }
        }
        peak
    }

    /// Parses and checks a scenario: names unique, steps refer to known
    /// workloads, durations and interruption kinds valid.
    pub fn parse(yaml: &str) -> Result<Self, InvalidScenario> {
        Self::checked(yaml).map_err(InvalidScenario)
    }

    fn checked(yaml: &str) -> Result<Self, String> {
        // Through JSON, so a step reads as `- scale: {...}` rather than a YAML tag.
        let value: serde_json::Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        let scenario: Scenario = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let names: Vec<&str> = scenario.workloads.iter().map(|w| w.name.as_str()).collect();
        for (i, w) in scenario.workloads.iter().enumerate() {
            if names[..i].contains(&w.name.as_str()) {
                return Err(format!("workloads[{i}].name: {:?} appears twice", w.name));
            }
            for (field, value) in [("cpu", &w.cpu), ("memory", &w.memory)] {
                value
                    .parse::<karpenter_api::quantity::Quantity>()
                    .map_err(|e| format!("workloads[{i}].{field}: {e}"))?;
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            match step {
                Step::Scale(replicas) => {
                    for (name, n) in replicas {
                        if !names.contains(&name.as_str()) {
                            return Err(format!("steps[{i}].scale: no workload named {name:?}"));
                        }
                        if *n < 0 {
                            return Err(format!("steps[{i}].scale.{name}: must be >= 0"));
                        }
                    }
                }
                Step::WaitRunning(d) | Step::Sleep(d) | Step::WaitScaledIn(d) => {
                    step_duration(d).map_err(|e| format!("steps[{i}]: {e}"))?;
                }
                Step::Interrupt(kind) => {
                    if !["spot", "rebalance", "scheduled-change", "stopping"]
                        .contains(&kind.as_str())
                    {
                        return Err(format!(
                            "steps[{i}].interrupt: {kind:?} is not spot, rebalance, scheduled-change or stopping"
                        ));
                    }
                }
            }
        }
        Ok(scenario)
    }

    /// The manifests of every workload (Deployments at zero replicas, PDBs).
    pub fn manifests(&self) -> String {
        let mut docs = Vec::new();
        for w in &self.workloads {
            let spec = w.pod_spec();
            docs.push(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": w.name, "namespace": self.namespace},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": w.name}},
                    "template": {"metadata": {"labels": {"app": w.name}}, "spec": spec}},
            }));
            if let Some(max) = w.max_unavailable {
                docs.push(json!({
                    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": {"name": w.name, "namespace": self.namespace},
                    "spec": {"maxUnavailable": max, "selector": {"matchLabels": {"app": w.name}}},
                }));
            }
        }
        docs.iter()
            .map(|d| serde_json::to_string(d).expect("JSON"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenario_parses() {
        let text = include_str!("../../../../examples/workloads/demo.yaml");
        let scenario = Scenario::parse(text).unwrap();
        let peak: i32 = scenario
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Scale(r) => Some(r.values().sum()),
                _ => None,
            })
            .max()
            .unwrap();
        assert_eq!(peak, 200);
        assert!(scenario.manifests().contains("PodDisruptionBudget"));
    }

    #[test]
    fn mistakes_name_the_field() {
        let bad =
            "name: x\nworkloads:\n- {name: a, cpu: '1', memory: 1Gi}\nsteps:\n- scale: {b: 3}\n";
        assert!(
            Scenario::parse(bad)
                .unwrap_err()
                .0
                .contains("steps[0].scale: no workload named \"b\"")
        );
        let bad = "name: x\nworkloads:\n- {name: a, cpu: lots, memory: 1Gi}\nsteps: []\n";
        assert!(
            Scenario::parse(bad)
                .unwrap_err()
                .0
                .contains("workloads[0].cpu")
        );
        let bad = "name: x\nworkloads: []\nsteps:\n- interrupt: meteor\n";
        assert!(
            Scenario::parse(bad)
                .unwrap_err()
                .0
                .contains("steps[0].interrupt")
        );
    }
}
