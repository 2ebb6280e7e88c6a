//! The requirement algebra the scheduler works in.
//!
//! A [`Requirement`] is the set of values one label may take: a finite set
//! (`In`), everything but a finite set (`NotIn`, `Exists`), nothing
//! (`DoesNotExist`), optionally narrowed to integers in an open range (`Gt`,
//! `Lt`; `Gte n` is `Gt n-1`, `Lte n` is `Lt n+1`). [`Requirements`] maps label
//! keys (beta aliases normalised) to requirements; adding a second requirement
//! for a key intersects the two, as upstream Karpenter does.
//!
//! ```
//! use karpenter_api::requirements::{Requirement, Requirements};
//! let mut pool = Requirements::default();
//! pool.add(Requirement::new("topology.kubernetes.io/zone", "In", &["us-east-1a", "us-east-1b"]).unwrap());
//! pool.add(Requirement::new("karpenter.k8s.aws/instance-cpu", "Gt", &["3"]).unwrap());
//!
//! let mut pod = Requirements::default();
//! pod.add(Requirement::new("failure-domain.beta.kubernetes.io/zone", "In", &["us-east-1b"]).unwrap());
//! assert!(pool.compatible(&pod).is_ok());
//!
//! let mut other = Requirements::default();
//! other.add(Requirement::new("topology.kubernetes.io/zone", "In", &["us-east-1d"]).unwrap());
//! assert_eq!(
//!     pool.compatible(&other).unwrap_err().to_string(),
//!     "topology.kubernetes.io/zone: In [us-east-1d] does not intersect In [us-east-1a, us-east-1b]"
//! );
//! assert!(pool.get("karpenter.k8s.aws/instance-cpu").unwrap().has("4"));
//! ```

use crate::error::{Incompatible, Invalid};

use crate::labels;
use crate::v1::NodeSelectorRequirementWithMinValues;
use k8s_openapi::api::core::v1::{Affinity, NodeSelectorRequirement};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The values one label may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    /// When true, `values` are excluded (everything else is allowed).
    complement: bool,
    values: BTreeSet<String>,
    /// Exclusive lower bound on integer values.
    greater_than: Option<i64>,
    /// Exclusive upper bound on integer values.
    less_than: Option<i64>,
    min_values: Option<u32>,
}

impl Requirement {
    /// Builds a requirement from an operator and values; the key is normalised.
    pub fn new(key: &str, operator: &str, values: &[&str]) -> Result<Self, Invalid> {
        let owned: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        Self::from_parts(key, operator, &owned, None)
    }

    fn from_parts(
        key: &str,
        operator: &str,
        values: &[String],
        min_values: Option<u32>,
    ) -> Result<Self, Invalid> {
        let key = labels::normalize(key).to_string();
        let bound = || -> Result<i64, String> {
            match values {
                [v] => v
                    .parse::<i64>()
                    .map_err(|_| format!("{key}: {operator} needs an integer value (got {v:?})")),
                _ => Err(format!(
                    "{key}: {operator} needs exactly one value (got {})",
                    values.len()
                )),
            }
        };
        let set = || values.iter().cloned().collect::<BTreeSet<_>>();
        let mut r = Requirement {
            key: key.clone(),
            complement: true,
            values: BTreeSet::new(),
            greater_than: None,
            less_than: None,
            min_values,
        };
        match operator {
            "In" => {
                r.complement = false;
                r.values = set();
            }
            "NotIn" => r.values = set(),
            "Exists" => {}
            "DoesNotExist" => r.complement = false,
            "Gt" => r.greater_than = Some(bound()?),
            "Gte" => r.greater_than = Some(bound()?.saturating_sub(1)),
            "Lt" => r.less_than = Some(bound()?),
            "Lte" => r.less_than = Some(bound()?.saturating_add(1)),
            other => return Err(Invalid(format!("{key}: unknown operator {other:?}"))),
        }
        Ok(r.normalized())
    }

    /// From a NodePool / NodeClaim requirement (keeps `minValues`).
    pub fn from_api(req: &NodeSelectorRequirementWithMinValues) -> Result<Self, Invalid> {
        let min = req.min_values.and_then(|m| u32::try_from(m).ok());
        Self::from_parts(&req.key, &req.operator, req.values(), min)
    }

    /// From a core node selector requirement (pod node affinity).
    pub fn from_node_selector(req: &NodeSelectorRequirement) -> Result<Self, Invalid> {
        Self::from_parts(
            &req.key,
            &req.operator,
            req.values.as_deref().unwrap_or_default(),
            None,
        )
    }

    /// The API form: one entry, or two for a range (`Gt` and `Lt`); what
    /// [`Requirement::from_api`] reads back to an equal requirement.
    pub fn to_api(&self) -> Vec<NodeSelectorRequirementWithMinValues> {
        let entry = |operator: &str, values: Vec<String>| NodeSelectorRequirementWithMinValues {
            key: self.key.clone(),
            operator: operator.to_string(),
            values: (!values.is_empty()).then_some(values),
            min_values: self.min_values.and_then(|m| i32::try_from(m).ok()),
        };
        let values: Vec<String> = self.values.iter().cloned().collect();
        let mut out = match (self.complement, values.is_empty()) {
            (false, false) => return vec![entry("In", values)],
            (false, true) => return vec![entry("DoesNotExist", values)],
            (true, false) => vec![entry("NotIn", values)],
            (true, true) => Vec::new(),
        };
        if let Some(gt) = self.greater_than {
            out.push(entry("Gt", vec![gt.to_string()]));
        }
        if let Some(lt) = self.less_than {
            out.push(entry("Lt", vec![lt.to_string()]));
        }
        if out.is_empty() {
            out.push(entry("Exists", Vec::new()));
        }
        out
    }

    /// The label key (normalised).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The minimum number of distinct values the scheduler must keep, if any.
    pub fn min_values(&self) -> Option<u32> {
        self.min_values
    }

    /// The operator that describes this requirement.
    pub fn operator(&self) -> &'static str {
        match (self.complement, self.values.is_empty()) {
            (true, true) if self.greater_than.is_some() && self.less_than.is_none() => "Gt",
            (true, true) if self.less_than.is_some() && self.greater_than.is_none() => "Lt",
            (true, true) => "Exists",
            (true, false) => "NotIn",
            (false, true) => "DoesNotExist",
            (false, false) => "In",
        }
    }

    /// The allowed values when the set is finite (`In`), else `None`.
    pub fn values(&self) -> Option<&BTreeSet<String>> {
        (!self.complement).then_some(&self.values)
    }

    /// True when no value satisfies the requirement (the label must be absent).
    pub fn is_empty(&self) -> bool {
        !self.complement && self.values.is_empty()
    }

    /// The number of allowed values (`usize::MAX` minus exclusions when unbounded).
    pub fn len(&self) -> usize {
        if self.complement {
            usize::MAX - self.values.len()
        } else {
            self.values.len()
        }
    }

    /// True when `value` satisfies the requirement.
    pub fn has(&self, value: &str) -> bool {
        if !self.within_bounds(value) {
            return false;
        }
        self.complement != self.values.contains(value)
    }

    fn within_bounds(&self, value: &str) -> bool {
        if self.greater_than.is_none() && self.less_than.is_none() {
            return true;
        }
        let Ok(n) = value.parse::<i64>() else {
            return false;
        };
        self.greater_than.is_none_or(|gt| n > gt) && self.less_than.is_none_or(|lt| n < lt)
    }

    /// True when everything `self` allows, `other` allows too.
    pub fn within(&self, other: &Requirement) -> bool {
        let plain = !self.complement && self.greater_than.is_none() && self.less_than.is_none();
        if plain && !self.values.is_empty() {
            // A plain `In`: no need to build the intersection.
            return self.values.iter().all(|v| other.has(v));
        }
        self.intersection(other) == *self
    }

    /// The values both requirements allow.
    pub fn intersection(&self, other: &Requirement) -> Requirement {
        let complement = self.complement && other.complement;
        let values = match (self.complement, other.complement) {
            (true, true) => self.values.union(&other.values).cloned().collect(),
            (true, false) => other.values.difference(&self.values).cloned().collect(),
            (false, true) => self.values.difference(&other.values).cloned().collect(),
            (false, false) => self.values.intersection(&other.values).cloned().collect(),
        };
        Requirement {
            key: self.key.clone(),
            complement,
            values,
            greater_than: max_opt(self.greater_than, other.greater_than),
            less_than: min_opt(self.less_than, other.less_than),
            min_values: max_opt(self.min_values, other.min_values),
        }
        .normalized()
    }

    /// Drops finite values outside the bounds; an empty integer range becomes `DoesNotExist`.
    fn normalized(mut self) -> Self {
        if !self.complement {
            let values = std::mem::take(&mut self.values);
            self.values = values
                .into_iter()
                .filter(|v| self.within_bounds(v))
                .collect();
            self.greater_than = None;
            self.less_than = None;
        } else if let (Some(gt), Some(lt)) = (self.greater_than, self.less_than)
            && gt.saturating_add(1) >= lt
        {
            self.complement = false;
            self.values.clear();
            self.greater_than = None;
            self.less_than = None;
        }
        self
    }

    /// One value the requirement allows, if it can name one (used to label nodes).
    pub fn any_value(&self) -> Option<String> {
        if !self.complement {
            return self.values.iter().next().cloned();
        }
        let start = self.greater_than.map_or(0, |gt| gt.saturating_add(1));
        (start..self.less_than.unwrap_or(i64::MAX))
            .take(self.values.len() + 1)
            .map(|n| n.to_string())
            .find(|v| !self.values.contains(v))
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        match self.operator() {
            "In" | "NotIn" => write!(f, "{} [{}]", self.operator(), values.join(", "))?,
            op => f.write_str(op)?,
        }
        match (self.greater_than, self.less_than) {
            (Some(gt), Some(lt)) => write!(f, " >{gt} <{lt}"),
            (Some(gt), None) => write!(f, " >{gt}"),
            (None, Some(lt)) => write!(f, " <{lt}"),
            (None, None) => Ok(()),
        }
    }
}

/// Requirements on many labels; at most one (intersected) requirement per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements(BTreeMap<String, Requirement>);

impl Requirements {
    /// The API form of every requirement ([`Requirement::to_api`]).
    pub fn to_api(&self) -> Vec<NodeSelectorRequirementWithMinValues> {
        self.iter().flat_map(Requirement::to_api).collect()
    }

    /// Adds a requirement, intersecting it with any existing one for the key.
    pub fn add(&mut self, req: Requirement) {
        let merged = match self.0.get(&req.key) {
            Some(existing) => existing.intersection(&req),
            None => req,
        };
        self.0.insert(merged.key.clone(), merged);
    }

    /// The requirement for a key (normalised), if any.
    pub fn get(&self, key: &str) -> Option<&Requirement> {
        self.0.get(labels::normalize(key))
    }

    /// True when there is a requirement for the key.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Iterates over the requirements in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Requirement> {
        self.0.values()
    }

    /// From NodePool or NodeClaim requirements.
    pub fn from_api(reqs: &[NodeSelectorRequirementWithMinValues]) -> Result<Self, Invalid> {
        let mut out = Requirements::default();
        for req in reqs {
            out.add(Requirement::from_api(req)?);
        }
        Ok(out)
    }

    /// `In [value]` for every label (a node's labels, a pod's nodeSelector, template labels).
    pub fn from_labels<'a>(labels_map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut out = Requirements::default();
        for (key, value) in labels_map {
            out.add(
                Requirement::from_parts(key, "In", std::slice::from_ref(value), None)
                    .expect("In never fails"),
            );
        }
        out
    }

    /// A pod's required scheduling constraints (from its `nodeSelector` and
    /// `affinity`): one set per OR-ed node affinity term, each including the
    /// `nodeSelector`.
    pub fn for_pod(
        node_selector: Option<&BTreeMap<String, String>>,
        affinity: Option<&Affinity>,
    ) -> Result<Vec<Self>, Invalid> {
        let base = Requirements::from_labels(node_selector.into_iter().flatten());
        let terms = affinity
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| s.node_selector_terms.as_slice())
            .unwrap_or_default();
        if terms.is_empty() {
            return Ok(vec![base]);
        }
        terms
            .iter()
            .map(|term| {
                let mut reqs = base.clone();
                for expr in term.match_expressions.iter().flatten() {
                    reqs.add(Requirement::from_node_selector(expr)?);
                }
                Ok(reqs)
            })
            .collect()
    }

    /// Adds every requirement of `other`.
    pub fn extend(&mut self, other: &Requirements) {
        for req in other.iter() {
            self.add(req.clone());
        }
    }

    /// Every key present in both has a non-empty intersection (two "absent"
    /// requirements agree). The error names the first key that does not.
    pub fn intersects(&self, other: &Requirements) -> Result<(), Incompatible> {
        for incoming in other.iter() {
            let Some(existing) = self.0.get(&incoming.key) else {
                continue;
            };
            if !existing.intersection(incoming).is_empty() {
                continue;
            }
            let absent = |r: &Requirement| matches!(r.operator(), "NotIn" | "DoesNotExist");
            if absent(existing) && absent(incoming) {
                continue;
            }
            return Err(Incompatible(format!(
                "{}: {incoming} does not intersect {existing}",
                incoming.key
            )));
        }
        Ok(())
    }

    /// Whether a pod (or anything) requiring `other` can run on what `self` describes.
    /// Labels `self` does not define are allowed only when well known or when `other`
    /// only excludes values; then every shared key must intersect.
    pub fn compatible(&self, other: &Requirements) -> Result<(), Incompatible> {
        for incoming in other.iter() {
            if self.0.contains_key(&incoming.key)
                || matches!(incoming.operator(), "NotIn" | "DoesNotExist")
                || labels::is_well_known(&incoming.key)
            {
                continue;
            }
            return Err(Incompatible(format!(
                "label {:?} does not have known values",
                incoming.key
            )));
        }
        self.intersects(other)
    }

    /// True when a set of labels (a node's, a pod's) satisfies every requirement;
    /// a missing label satisfies only `NotIn` and `DoesNotExist`.
    pub fn matches(&self, labels_map: &BTreeMap<String, String>) -> bool {
        self.iter().all(|r| match labels_map.get(r.key()) {
            Some(value) => r.has(value),
            None => matches!(r.operator(), "NotIn" | "DoesNotExist"),
        })
    }

    /// Labels a node gets: every key with exactly one allowed value.
    pub fn single_valued_labels(&self) -> BTreeMap<String, String> {
        self.iter()
            .filter_map(|r| match r.values() {
                Some(values) if values.len() == 1 => {
                    Some((r.key.clone(), values.iter().next()?.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, op: &str, values: &[&str]) -> Requirement {
        Requirement::new(key, op, values).unwrap()
    }

    fn reqs(items: &[Requirement]) -> Requirements {
        let mut out = Requirements::default();
        for r in items {
            out.add(r.clone());
        }
        out
    }

    #[test]
    fn within_is_subset() {
        let zones = req("zone", "In", &["a", "b"]);
        assert!(req("zone", "In", &["a"]).within(&zones));
        assert!(!req("zone", "In", &["a", "c"]).within(&zones));
        assert!(req("zone", "In", &["c"]).within(&req("zone", "NotIn", &["a"])));
        assert!(!req("zone", "Exists", &[]).within(&zones));
        assert!(zones.within(&req("zone", "Exists", &[])));
        assert!(req("n", "Gt", &["5"]).within(&req("n", "Gt", &["3"])));
        assert!(!req("n", "Gt", &["3"]).within(&req("n", "Gt", &["5"])));
    }

    #[test]
    fn operators_round_trip() {
        assert_eq!(req("a", "In", &["x"]).operator(), "In");
        assert_eq!(req("a", "NotIn", &["x"]).operator(), "NotIn");
        assert_eq!(req("a", "Exists", &[]).operator(), "Exists");
        assert_eq!(req("a", "DoesNotExist", &[]).operator(), "DoesNotExist");
        assert_eq!(req("a", "Gt", &["1"]).operator(), "Gt");
        assert_eq!(req("a", "Lt", &["1"]).operator(), "Lt");
        assert!(Requirement::new("a", "Gt", &["x"]).is_err());
        assert!(Requirement::new("a", "Gt", &["1", "2"]).is_err());
        assert!(Requirement::new("a", "Near", &[]).is_err());
    }

    #[test]
    fn intersection_table() {
        let in_ab = req("k", "In", &["a", "b"]);
        let in_bc = req("k", "In", &["b", "c"]);
        let notin_a = req("k", "NotIn", &["a"]);
        let notin_c = req("k", "NotIn", &["c"]);
        let exists = req("k", "Exists", &[]);
        let absent = req("k", "DoesNotExist", &[]);

        assert_eq!(in_ab.intersection(&in_bc).values().unwrap().len(), 1);
        assert!(in_ab.intersection(&in_bc).has("b"));
        assert_eq!(in_ab.intersection(&notin_a).to_string(), "In [b]");
        assert_eq!(notin_a.intersection(&in_ab).to_string(), "In [b]");
        assert_eq!(notin_a.intersection(&notin_c).to_string(), "NotIn [a, c]");
        assert_eq!(exists.intersection(&in_ab), in_ab.intersection(&exists));
        assert_eq!(exists.intersection(&in_ab).to_string(), "In [a, b]");
        assert!(absent.intersection(&in_ab).is_empty());
        assert!(absent.intersection(&exists).is_empty());
        assert!(!exists.intersection(&notin_a).is_empty());
    }

    #[test]
    fn integer_ranges() {
        let gt4 = req("cpu", "Gt", &["4"]);
        let lt16 = req("cpu", "Lt", &["16"]);
        let range = gt4.intersection(&lt16);
        assert!(range.has("5") && range.has("15"));
        assert!(!range.has("4") && !range.has("16") && !range.has("large"));
        assert_eq!(range.to_string(), "Exists >4 <16");

        let gte4 = req("cpu", "Gte", &["4"]);
        assert!(gte4.has("4") && !gte4.has("3"));
        let lte4 = req("cpu", "Lte", &["4"]);
        assert!(lte4.has("4") && !lte4.has("5"));

        // An empty range means the label can have no value.
        assert!(
            req("cpu", "Gt", &["8"])
                .intersection(&req("cpu", "Lt", &["9"]))
                .is_empty()
        );
        // Finite sets are filtered by the range.
        let sizes = req("cpu", "In", &["2", "4", "8", "x"]).intersection(&gt4);
        assert_eq!(sizes.to_string(), "In [8]");
        assert_eq!(range.any_value().as_deref(), Some("5"));
    }

    #[test]
    fn min_values_take_the_maximum() {
        let mut a = req("type", "In", &["a", "b", "c"]);
        a.min_values = Some(2);
        let mut b = req("type", "Exists", &[]);
        b.min_values = Some(3);
        assert_eq!(a.intersection(&b).min_values(), Some(3));
    }

    #[test]
    fn compatibility_rules() {
        let pool = reqs(&[
            req("topology.kubernetes.io/zone", "In", &["z1", "z2"]),
            req("team", "In", &["a"]),
        ]);
        // Undefined custom label: denied unless it only excludes.
        let pod = reqs(&[req("other", "In", &["x"])]);
        assert_eq!(
            pool.compatible(&pod).unwrap_err().0,
            "label \"other\" does not have known values"
        );
        assert!(
            pool.compatible(&reqs(&[req("other", "NotIn", &["x"])]))
                .is_ok()
        );
        assert!(
            pool.compatible(&reqs(&[req("other", "DoesNotExist", &[])]))
                .is_ok()
        );
        // Undefined well-known label: allowed.
        assert!(
            pool.compatible(&reqs(&[req("kubernetes.io/arch", "In", &["arm64"])]))
                .is_ok()
        );
        // Shared keys must intersect.
        assert!(
            pool.compatible(&reqs(&[req("team", "In", &["b"])]))
                .is_err()
        );
        assert!(
            pool.compatible(&reqs(&[req("team", "NotIn", &["b"])]))
                .is_ok()
        );
        // Two exclusions of everything agree.
        let none = reqs(&[req("gpu", "DoesNotExist", &[])]);
        assert!(
            none.compatible(&reqs(&[req("gpu", "DoesNotExist", &[])]))
                .is_ok()
        );
    }

    #[test]
    fn beta_labels_are_normalised() {
        let pool = reqs(&[req("failure-domain.beta.kubernetes.io/zone", "In", &["z1"])]);
        assert!(pool.has("topology.kubernetes.io/zone"));
        assert!(
            pool.get("failure-domain.beta.kubernetes.io/zone")
                .unwrap()
                .has("z1")
        );
    }

    #[test]
    fn pod_requirements_one_set_per_term() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [],
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z1"]}]},
                {"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}
            ]}}}
        }))
        .unwrap();
        let sets =
            Requirements::for_pod(spec.node_selector.as_ref(), spec.affinity.as_ref()).unwrap();
        assert_eq!(sets.len(), 2);
        assert!(
            sets.iter()
                .all(|s| s.get("kubernetes.io/arch").unwrap().has("amd64"))
        );
        assert!(
            sets[0].has("topology.kubernetes.io/zone")
                && !sets[0].has("karpenter.sh/capacity-type")
        );
        assert_eq!(
            sets[1]
                .single_valued_labels()
                .get("karpenter.sh/capacity-type")
                .map(String::as_str),
            Some("spot")
        );
    }

    #[test]
    fn api_form_round_trips() {
        let cases = [
            ("In", vec!["a", "b"]),
            ("NotIn", vec!["a"]),
            ("Exists", vec![]),
            ("DoesNotExist", vec![]),
            ("Gt", vec!["3"]),
            ("Lte", vec!["8"]),
        ];
        for (operator, values) in cases {
            let r = Requirement::new("karpenter.k8s.aws/instance-cpu", operator, &values).unwrap();
            let back = Requirements::from_api(&r.to_api()).unwrap();
            assert_eq!(back.get(r.key()), Some(&r), "{operator}");
        }
        let mut range = Requirements::default();
        range.add(Requirement::new("karpenter.k8s.aws/instance-cpu", "Gt", &["3"]).unwrap());
        range.add(Requirement::new("karpenter.k8s.aws/instance-cpu", "Lt", &["9"]).unwrap());
        assert_eq!(range.to_api().len(), 2);
        assert_eq!(Requirements::from_api(&range.to_api()).unwrap(), range);
    }
}
