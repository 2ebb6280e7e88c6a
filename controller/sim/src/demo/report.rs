//! What the demo shows: a snapshot of the cluster for the live progress
//! line, the record of every node launched, and the closing summary.

use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::labels;
use karpenter_api::v1::NodeClaim;
use karpenter_controller::catalog::Catalog;
use kube::Api;
use kube::api::ListParams;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::Duration;

/// The cluster at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Pods that exist.
    pub pods: usize,
    /// Pods Running.
    pub running: usize,
    /// Nodes Ready.
    pub nodes_ready: usize,
    /// NodeClaims not yet backed by a Ready node.
    pub launching: usize,
    /// NodeClaims being deleted.
    pub draining: usize,
    /// Hourly price of every launched NodeClaim.
    pub hourly_cost: f64,
    /// Ready nodes (not being deleted) without a pod of the demo's workloads.
    pub empty: usize,
}

impl Snapshot {
    /// Whether every pod runs and nothing is launching or draining.
    pub fn settled(&self) -> bool {
        self.running == self.pods && self.draining == 0 && self.launching == 0
    }
}

/// One launched node, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// Instance type.
    pub instance_type: String,
    /// Zone.
    pub zone: String,
    /// `spot`, `on-demand`, `reserved`.
    pub capacity_type: String,
    /// Price per hour.
    pub price: f64,
}

/// An interruption the demo delivered and how fast it was handled.
#[derive(Debug, Clone)]
pub struct Handled {
    /// What kind.
    pub kind: String,
    /// The node.
    pub node: String,
    /// Message sent to NodeClaim deleting (cordon and drain under way).
    pub to_drain: Option<Duration>,
    /// Message sent to every pod running again.
    pub to_recovered: Option<Duration>,
}

/// Watches the cluster through the API, as a user with kubectl would.
pub struct Observer {
    client: kube::Client,
    catalog: Catalog,
    /// Every NodeClaim that launched (by name).
    pub launched: BTreeMap<String, Launch>,
    /// The most expensive moment.
    pub peak_cost: f64,
    /// The most nodes at once.
    pub peak_nodes: usize,
}

fn price(catalog: &Catalog, claim: &NodeClaim) -> Option<Launch> {
    let l = claim.metadata.labels.as_ref()?;
    let instance_type = l.get(labels::INSTANCE_TYPE)?.clone();
    let zone = l.get(labels::ZONE)?.clone();
    let capacity_type = l.get(labels::CAPACITY_TYPE)?.clone();
    let price = catalog
        .get(&instance_type)?
        .offerings
        .iter()
        .filter(|o| o.zone == zone && o.capacity_type.label() == capacity_type)
        .map(|o| o.price)
        .next()
        .unwrap_or(0.0);
    Some(Launch {
        instance_type,
        zone,
        capacity_type,
        price,
    })
}

impl Observer {
    /// An observer pricing nodes from `catalog`.
    pub fn new(client: kube::Client, catalog: Catalog) -> Self {
        Observer {
            client,
            catalog,
            launched: BTreeMap::new(),
            peak_cost: 0.0,
            peak_nodes: 0,
        }
    }

    /// Reads the cluster and records launches.
    pub async fn snapshot(&mut self, namespace: &str) -> Result<Snapshot, kube::Error> {
        let lp = ListParams::default();
        let pods = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .list(&lp)
            .await?;
        let nodes = Api::<Node>::all(self.client.clone()).list(&lp).await?;
        let claims = Api::<NodeClaim>::all(self.client.clone()).list(&lp).await?;
        let ready_nodes: HashMap<String, bool> = nodes
            .items
            .iter()
            .map(|n| {
                let ready = karpenter_controller::state::node_ready(n);
                (n.metadata.name.clone().unwrap_or_default(), ready)
            })
            .collect();
        let mut snapshot = Snapshot {
            pods: pods
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count(),
            running: pods
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count(),
            nodes_ready: ready_nodes.values().filter(|r| **r).count(),
            ..Snapshot::default()
        };
        let busy: std::collections::HashSet<&str> = pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.spec.as_ref()?.node_name.as_deref())
            .collect();
        for claim in &claims.items {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if claim.metadata.deletion_timestamp.is_some() {
                snapshot.draining += 1;
                continue;
            }
            let node_ready = claim
                .status
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| ready_nodes.get(n).copied().unwrap_or(false));
            if !node_ready {
                snapshot.launching += 1;
            } else if claim
                .status
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !busy.contains(n))
            {
                snapshot.empty += 1;
            }
            if let Some(launch) = price(&self.catalog, claim) {
                snapshot.hourly_cost += launch.price;
                self.launched.entry(name).or_insert(launch);
            }
        }
        self.peak_cost = self.peak_cost.max(snapshot.hourly_cost);
        self.peak_nodes = self.peak_nodes.max(claims.items.len());
        Ok(snapshot)
    }

    /// Whether the NodeClaim of the node with `provider_id` is being deleted (or gone).
    pub async fn claim_deleting(&self, name: &str) -> Result<bool, kube::Error> {
        let claims: Api<NodeClaim> = Api::all(self.client.clone());
        Ok(claims
            .get_opt(name)
            .await?
            .is_none_or(|c| c.metadata.deletion_timestamp.is_some()))
    }
}

fn counts<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *by.entry(v).or_default() += 1;
    }
    let mut sorted: Vec<(&str, usize)> = by.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    sorted
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything the summary reports.
pub struct Summary<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Whole run.
    pub total: Duration,
    /// First scale-up until every pod ran.
    pub scale_out: Option<(usize, Duration)>,
    /// Launch record and peaks.
    pub observer: &'a Observer,
    /// The cluster at the end.
    pub last: &'a Snapshot,
    /// Interruptions.
    pub interruptions: &'a [Handled],
    /// Scale-in: the cluster before and after disruption removed nodes, and how long that took.
    pub scale_in: Option<(Snapshot, Snapshot, Duration)>,
    /// Nodes disruption removed, by reason (`empty: 14, underutilized: 2`).
    pub disrupted: String,
    /// The kubeconfig path.
    pub kubeconfig: &'a str,
    /// The LP bound of the scenario's peak workload, or why there is none.
    pub peak_bound: &'a Result<super::bound::PeakBound, super::bound::NoBound>,
}

impl Summary<'_> {
    /// The summary as text.
    pub fn render(&self) -> String {
        let o = self.observer;
        let launches: Vec<&Launch> = o.launched.values().collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n== {} ({:.1} s) ==",
            self.scenario,
            self.total.as_secs_f64()
        );
        if let Some((pods, took)) = self.scale_out {
            let _ = writeln!(
                out,
                "  all {pods} pods running after   {:.1} s",
                took.as_secs_f64()
            );
        }
        let _ = writeln!(out, "  nodes launched             {}", launches.len());
        let _ = writeln!(
            out,
            "    by type                  {}",
            counts(launches.iter().map(|l| l.instance_type.as_str()))
        );
        let _ = writeln!(
            out,
            "    by zone                  {}",
            counts(launches.iter().map(|l| l.zone.as_str()))
        );
        let _ = writeln!(
            out,
            "    by capacity type         {}",
            counts(launches.iter().map(|l| l.capacity_type.as_str()))
        );
        let _ = writeln!(
            out,
            "  hourly cost at peak        ${:.3}/h on {} nodes",
            o.peak_cost, o.peak_nodes
        );
        match self.peak_bound {
            Ok(bound) => {
                let _ = writeln!(
                    out,
                    "  LP bound at the peak       ${:.3}/h for its {} pods (peak cost / bound {:.2})",
                    bound.hourly,
                    bound.pods,
                    o.peak_cost / bound.hourly
                );
            }
            Err(e) => {
                let _ = writeln!(out, "  LP bound at the peak       {e}");
            }
        }
        let _ = writeln!(
            out,
            "  hourly cost at the end     ${:.3}/h on {} nodes ({} pods)",
            self.last.hourly_cost, self.last.nodes_ready, self.last.pods
        );
        if let Some((before, after, took)) = &self.scale_in {
            let _ = writeln!(
                out,
                "  scale-in                   {} -> {} nodes in {:.1} s, ${:.3}/h -> ${:.3}/h (nodes disrupted: {}; replacements launched make up any difference)",
                before.nodes_ready,
                after.nodes_ready,
                took.as_secs_f64(),
                before.hourly_cost,
                after.hourly_cost,
                self.disrupted,
            );
        }
        for h in self.interruptions {
            let secs = |d: Option<Duration>| {
                d.map_or("not seen".to_string(), |d| {
                    format!("{:.2} s", d.as_secs_f64())
                })
            };
            let _ = writeln!(
                out,
                "  {} interruption of {}: draining after {}, all pods running again after {}",
                h.kind,
                h.node,
                secs(h.to_drain),
                secs(h.to_recovered)
            );
        }
        if self.interruptions.is_empty() {
            let _ = writeln!(out, "  interruptions handled      0");
        }
        let _ = writeln!(out, "  kubeconfig                 {}", self.kubeconfig);
        out
    }
}

/// Nodes disrupted by reason, from the controller's
/// `karpenter_nodeclaims_disrupted_total` series (`empty 14, underutilized 2`).
pub fn disrupted(metrics: &str) -> String {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("karpenter_nodeclaims_disrupted_total{reason=\"") else {
            continue;
        };
        let reason = rest.split('"').next().unwrap_or_default();
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *by.entry(reason.to_string()).or_default() += count;
    }
    if by.is_empty() {
        return "none by disruption".into();
    }
    by.iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
