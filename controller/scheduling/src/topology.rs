//! Topology: topology spread constraints and pod (anti-)affinity, as groups
//! of pods counted per domain (a zone, a node, a capacity type, any label).
//!
//! A pod *owns* the groups its own rules define and *is selected by* the groups
//! whose selector matches it. Before a pod is placed, the groups it owns (and
//! the anti-affinity of pods already placed that select it) say which domains
//! it may use; after it is placed, every group that selects it counts it in
//! the domain it landed in. As upstream does: a hostname spread's minimum is
//! always zero (a new node is an empty domain), and a pod on a node whose
//! domain is not decided yet is counted only by anti-affinity groups (in every
//! domain it might get). Unlike upstream, a pod that owns a group on a
//! non-hostname key always narrows its node to one domain, so it is counted.

use super::pod::PodInfo;
use super::solve::ExistingNode;
use k8s_openapi::api::core::v1::{Taint, Toleration};
use karpenter_api::labels::HOSTNAME;
use karpenter_api::requirements::{Requirement, Requirements};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// What a topology term asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Topology spread: no domain more than `max_skew` above the emptiest
    /// (which counts as zero while fewer than `min_domains` domains exist).
    Spread {
        /// `maxSkew`.
        max_skew: i32,
        /// `minDomains` (1 when unset).
        min_domains: i32,
    },
    /// Pod affinity: only domains that already run a selected pod.
    Affinity,
    /// Pod anti-affinity: only domains that run no selected pod.
    AntiAffinity,
}

/// Which nodes a spread counts (`nodeAffinityPolicy`, `nodeTaintsPolicy`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFilter {
    /// With `Honor` (the default): only nodes the owner's node-affinity terms allow.
    pub terms: Option<Vec<Requirements>>,
    /// With `Honor`: only nodes whose taints the owner tolerates.
    pub tolerations: Option<Vec<Toleration>>,
}

/// One topology rule of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyTerm {
    /// Spread, affinity or anti-affinity.
    pub kind: Kind,
    /// The topology key (`topology.kubernetes.io/zone`, `kubernetes.io/hostname`, ...).
    pub key: String,
    /// Which pods count (`None`: a null selector, which selects nothing).
    pub selector: Option<Requirements>,
    /// Namespaces whose pods count (`None`: all).
    pub namespaces: Option<BTreeSet<String>>,
    /// Spreads only: which nodes count.
    pub node_filter: Option<NodeFilter>,
}

impl TopologyTerm {
    fn selects(&self, pod: &PodInfo) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|n| n.contains(&pod.namespace))
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Spread { max_skew, .. } => {
                format!("topology spread on {} (maxSkew {max_skew})", self.key)
            }
            Kind::Affinity => format!("pod affinity on {}", self.key),
            Kind::AntiAffinity => format!("pod anti-affinity on {}", self.key),
        }
    }
}

/// A multiplicative hash for dense integer ids (the std hasher is needlessly slow here).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Counts = HashMap<u32, u32, BuildHasherDefault<IdHasher>>;

/// Where a pod is placed, as topology sees it.
pub struct Place<'a> {
    /// Its hostname domain.
    pub host: u32,
    /// A node's labels, or a planned claim's requirements.
    pub labels: Labels<'a>,
    /// Its taints.
    pub taints: &'a [Taint],
}

/// The labels of a place.
pub enum Labels<'a> {
    /// An existing node: exactly these.
    Node(&'a BTreeMap<String, String>),
    /// A planned claim: whatever its requirements allow.
    Claim(&'a Requirements),
}

struct Group {
    term: TopologyTerm,
    /// Selected pods per domain.
    counts: Counts,
    /// Anti-affinity only: domains where an owner runs (selected pods keep out).
    owners: Counts,
}

impl Group {
    fn count(&self, domain: u32) -> u32 {
        self.counts.get(&domain).copied().unwrap_or(0)
    }

    /// Whether a pod on `place` counts for this group (the owner's node filter).
    fn counts_on(&self, place: &Place) -> bool {
        let Some(filter) = &self.term.node_filter else {
            return true;
        };
        let terms_ok = filter.terms.as_ref().is_none_or(|terms| {
            terms.iter().any(|term| match &place.labels {
                Labels::Node(labels) => term.matches(labels),
                Labels::Claim(requirements) => requirements.intersects(term).is_ok(),
            })
        });
        let taints_ok = filter.tolerations.as_ref().is_none_or(|tolerations| {
            place
                .taints
                .iter()
                .filter(|t| t.effect != "PreferNoSchedule")
                .all(|taint| tolerations.iter().any(|t| super::pod::tolerates(t, taint)))
        });
        terms_ok && taints_ok
    }
}

/// What a pod's topology allows, for one placement attempt.
#[derive(Debug, Default)]
pub struct Needs {
    /// Requirements on non-hostname keys (`In` allowed domains, `NotIn` forbidden ones).
    pub requirements: Requirements,
    /// Non-hostname keys the pod's node must be narrowed to one domain of, best first.
    pub collapse: Vec<(String, Vec<String>)>,
    host_rules: Vec<HostRule>,
}

#[derive(Debug)]
enum HostRule {
    /// At most this many selected pods on the node already.
    AtMost(usize, i64),
    /// At least one selected pod on the node already.
    AtLeastOne(usize),
    /// No owner of this anti-affinity group on the node.
    NoOwner(usize),
}

/// Every topology group of a batch, with its counts.
pub struct Topology {
    names: HashMap<String, u32>,
    node_hosts: Vec<u32>,
    groups: Vec<Group>,
    by_term: HashMap<String, usize>,
    /// Known domains per non-hostname key.
    universe: BTreeMap<String, Vec<String>>,
    /// Per pending pod: the groups of its constraints, then those of its preferences (or `None`).
    owned: Vec<(Vec<usize>, Vec<Option<usize>>)>,
    /// Per pending pod: the groups that select it.
    selected_by: Vec<Vec<usize>>,
}

impl Topology {
    /// Builds the groups of `pending` pods and of running pods' required
    /// anti-affinity, and counts the pods running on `nodes`. `domains` lists the
    /// known values of a label key (from the NodePools' instance types and offerings).
    pub fn new(
        pending: &[PodInfo],
        nodes: &[&ExistingNode],
        domains: impl Fn(&str) -> BTreeSet<String>,
    ) -> Self {
        let mut topology = Topology {
            names: HashMap::new(),
            node_hosts: Vec::new(),
            groups: Vec::new(),
            by_term: HashMap::new(),
            universe: BTreeMap::new(),
            owned: Vec::with_capacity(pending.len()),
            selected_by: Vec::with_capacity(pending.len()),
        };
        for pod in pending {
            let hard = pod.constraints.iter().map(|t| topology.group(t)).collect();
            let soft = pod
                .preferences
                .iter()
                .map(|p| match p {
                    super::pod::Preference::Topology(t) => Some(topology.group(t)),
                    _ => None,
                })
                .collect();
            topology.owned.push((hard, soft));
        }
        for node in nodes {
            for pod in &node.pods {
                for term in &pod.constraints {
                    if term.kind == Kind::AntiAffinity {
                        topology.group(term);
                    }
                }
            }
        }
        let mut keys: BTreeSet<String> =
            topology.groups.iter().map(|g| g.term.key.clone()).collect();
        keys.remove(HOSTNAME);
        for key in keys {
            let mut values = domains(&key);
            values.extend(nodes.iter().filter_map(|n| n.labels.get(&key).cloned()));
            topology.universe.insert(key, values.into_iter().collect());
        }
        for pod in pending {
            let selecting = (0..topology.groups.len())
                .filter(|&g| topology.groups[g].term.selects(pod))
                .collect();
            topology.selected_by.push(selecting);
        }
        for node in nodes {
            let host = node.labels.get(HOSTNAME).unwrap_or(&node.name).clone();
            let host = topology.id(&host);
            topology.node_hosts.push(host);
            let place = Place {
                host,
                labels: Labels::Node(&node.labels),
                taints: &node.taints,
            };
            for pod in &node.pods {
                let selecting: Vec<usize> = (0..topology.groups.len())
                    .filter(|&g| topology.groups[g].term.selects(pod))
                    .collect();
                let owned: Vec<usize> = pod
                    .constraints
                    .iter()
                    .filter(|t| t.kind == Kind::AntiAffinity)
                    .filter_map(|t| topology.by_term.get(&format!("{t:?}")).copied())
                    .collect();
                topology.record_groups(&selecting, &owned, &place);
            }
        }
        topology
    }

    fn group(&mut self, term: &TopologyTerm) -> usize {
        let identity = format!("{term:?}");
        if let Some(&g) = self.by_term.get(&identity) {
            return g;
        }
        self.groups.push(Group {
            term: term.clone(),
            counts: Counts::default(),
            owners: Counts::default(),
        });
        self.by_term.insert(identity, self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// The id of a domain name (hostnames of nodes and claims, zones, ...).
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.insert(name.to_string(), id);
        id
    }

    /// The hostname domain of existing node `index` (in the order given to [`Topology::new`]).
    pub fn node_host(&self, index: usize) -> u32 {
        self.node_hosts[index]
    }

    fn name_id(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// True when pod `pod` owns or is selected by any group (the slow path applies).
    pub fn involves(&self, pod: usize) -> bool {
        !self.owned[pod].0.is_empty()
            || self.owned[pod].1.iter().any(Option::is_some)
            || !self.selected_by[pod].is_empty()
    }

    /// What pod `pod` may use while its first `relaxed` preferences are given up,
    /// or why nothing can satisfy it now.
    pub fn needs(&self, pod: usize, info: &PodInfo, relaxed: usize) -> Result<Needs, String> {
        let (hard, soft) = &self.owned[pod];
        let active = hard
            .iter()
            .copied()
            .chain(soft.iter().skip(relaxed).filter_map(|g| *g));
        let mut needs = Needs::default();
        for g in active {
            let group = &self.groups[g];
            let selects_self = group.term.selects(info);
            if group.term.key == HOSTNAME {
                self.host_rule(g, selects_self, &mut needs)?;
            } else {
                self.domain_rule(g, info, selects_self, &mut needs)?;
            }
        }
        // Running or placed pods whose anti-affinity selects this pod keep it out.
        for &g in &self.selected_by[pod] {
            let group = &self.groups[g];
            if group.term.kind != Kind::AntiAffinity || group.owners.is_empty() {
                continue;
            }
            if group.term.key == HOSTNAME {
                needs.host_rules.push(HostRule::NoOwner(g));
            } else {
                let forbidden = self.domain_names(&group.term.key, &group.owners);
                let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
                needs
                    .requirements
                    .add(Requirement::new(&group.term.key, "NotIn", &refs)?);
            }
        }
        Ok(needs)
    }

    fn host_rule(&self, g: usize, selects_self: bool, needs: &mut Needs) -> Result<(), String> {
        let group = &self.groups[g];
        match &group.term.kind {
            Kind::Spread { max_skew, .. } => needs.host_rules.push(HostRule::AtMost(
                g,
                i64::from(*max_skew) - i64::from(selects_self),
            )),
            Kind::AntiAffinity => needs.host_rules.push(HostRule::AtMost(g, 0)),
            Kind::Affinity => {
                if group.counts.values().any(|&c| c > 0) {
                    needs.host_rules.push(HostRule::AtLeastOne(g));
                } else if !selects_self {
                    return Err(format!(
                        "{}: no pod matches its selector yet",
                        group.term.describe()
                    ));
                }
            }
        }
        Ok(())
    }

    fn domain_rule(
        &self,
        g: usize,
        info: &PodInfo,
        selects_self: bool,
        needs: &mut Needs,
    ) -> Result<(), String> {
        let group = &self.groups[g];
        let key = &group.term.key;
        let universe = self
            .universe
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let count = |d: &String| self.name_id(d).map_or(0, |id| group.count(id));
        let allowed_by_pod = |d: &&String| {
            info.terms
                .iter()
                .any(|t| t.get(key).is_none_or(|r| r.has(d)))
        };
        let mut allowed: Vec<&String> = match &group.term.kind {
            Kind::Spread {
                max_skew,
                min_domains,
            } => {
                let honor = group
                    .term
                    .node_filter
                    .as_ref()
                    .is_some_and(|f| f.terms.is_some());
                let eligible: Vec<&String> = universe
                    .iter()
                    .filter(|d| !honor || allowed_by_pod(d))
                    .collect();
                let min = if (eligible.len() as i64) < i64::from(*min_domains) {
                    0
                } else {
                    eligible.iter().map(|d| count(d)).min().unwrap_or(0)
                };
                let limit = i64::from(*max_skew) + i64::from(min) - i64::from(selects_self);
                let mut allowed: Vec<&String> = eligible
                    .into_iter()
                    .filter(|d| i64::from(count(d)) <= limit)
                    .collect();
                allowed.sort_by_key(|d| count(d));
                allowed
            }
            Kind::Affinity => {
                let mut occupied: Vec<&String> = universe.iter().filter(|d| count(d) > 0).collect();
                occupied.sort_by_key(|d| std::cmp::Reverse(count(d)));
                if !occupied.is_empty() {
                    occupied
                } else if selects_self {
                    universe.iter().filter(allowed_by_pod).collect()
                } else {
                    return Err(format!(
                        "{}: no pod matches its selector yet",
                        group.term.describe()
                    ));
                }
            }
            Kind::AntiAffinity => universe
                .iter()
                .filter(|d| count(d) == 0)
                .filter(allowed_by_pod)
                .collect(),
        };
        allowed.dedup();
        if allowed.is_empty() {
            return Err(format!(
                "{}: no {key} domain allows the pod{}",
                group.term.describe(),
                if universe.is_empty() {
                    " (no NodePool or node offers this label)".to_string()
                } else {
                    format!(" (domains: {})", self.counts_text(key, group))
                }
            ));
        }
        let refs: Vec<&str> = allowed.iter().map(|d| d.as_str()).collect();
        needs.requirements.add(Requirement::new(key, "In", &refs)?);
        needs
            .collapse
            .push((key.clone(), allowed.into_iter().cloned().collect()));
        Ok(())
    }

    fn counts_text(&self, key: &str, group: &Group) -> String {
        self.universe
            .get(key)
            .into_iter()
            .flatten()
            .map(|d| format!("{d}={}", self.name_id(d).map_or(0, |id| group.count(id))))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn domain_names(&self, key: &str, counts: &Counts) -> Vec<String> {
        self.universe
            .get(key)
            .into_iter()
            .flatten()
            .filter(|d| {
                self.name_id(d)
                    .is_some_and(|id| counts.get(&id).is_some_and(|&c| c > 0))
            })
            .cloned()
            .collect()
    }

    /// Whether `needs` allows a pod on the node (or claim) with hostname domain `host`.
    pub fn host_allows(&self, needs: &Needs, host: u32) -> bool {
        needs.host_rules.iter().all(|rule| match *rule {
            HostRule::AtMost(g, limit) => i64::from(self.groups[g].count(host)) <= limit,
            HostRule::AtLeastOne(g) => self.groups[g].count(host) > 0,
            HostRule::NoOwner(g) => self.groups[g].owners.get(&host).is_none_or(|&c| c == 0),
        })
    }

    /// Counts pending pod `pod`, placed at `place`, in every group that selects
    /// it, and as an owner of its required anti-affinity groups (preferred
    /// anti-affinity binds only its owner, as in Kubernetes).
    pub fn record(&mut self, pod: usize, place: &Place) {
        let owned: Vec<usize> = self.owned[pod]
            .0
            .iter()
            .copied()
            .filter(|&g| self.groups[g].term.kind == Kind::AntiAffinity)
            .collect();
        let selecting = self.selected_by[pod].clone();
        self.record_groups(&selecting, &owned, place);
    }

    fn record_groups(&mut self, selecting: &[usize], owned: &[usize], place: &Place) {
        for &g in selecting {
            if !self.groups[g].counts_on(place) {
                continue;
            }
            let domains = self.domains_of(&self.groups[g].term.key.clone(), place);
            let anti = self.groups[g].term.kind == Kind::AntiAffinity;
            if anti || domains.len() == 1 {
                for d in domains {
                    *self.groups[g].counts.entry(d).or_insert(0) += 1;
                }
            }
        }
        for &g in owned {
            let domains = self.domains_of(&self.groups[g].term.key.clone(), place);
            for d in domains {
                *self.groups[g].owners.entry(d).or_insert(0) += 1;
            }
        }
    }

    /// The domains of `key` a place is or may be in.
    fn domains_of(&mut self, key: &str, place: &Place) -> Vec<u32> {
        if key == HOSTNAME {
            return vec![place.host];
        }
        match &place.labels {
            Labels::Node(labels) => labels.get(key).map(|v| self.id(v)).into_iter().collect(),
            Labels::Claim(requirements) => {
                let values: Vec<String> = match requirements.get(key) {
                    Some(r) => match r.values().filter(|_| r.operator() == "In") {
                        Some(values) => values.iter().cloned().collect(),
                        None => self.universe_where(key, |d| r.has(d)),
                    },
                    None => self.universe_where(key, |_| true),
                };
                values.iter().map(|v| self.id(v)).collect()
            }
        }
    }

    fn universe_where(&self, key: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.universe
            .get(key)
            .into_iter()
            .flatten()
            .filter(|d| keep(d))
            .cloned()
            .collect()
    }
}
