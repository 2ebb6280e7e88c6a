//! The NodeClaim lifecycle: launch (the instance through the cloud provider;
//! `Launched`), registration (a Node with the claim's provider ID joined:
//! labels, taints, finalizer and owner reference synced, the
//! `karpenter.sh/unregistered` taint removed; `Registered`), initialization
//! (Node Ready, start-up taints gone, requested resources registered;
//! `Initialized`, `Ready`) and liveness (no launch within 5 minutes, or no
//! Node within 15 minutes of launch: the claim is deleted, which terminates
//! whatever was launched).

use crate::cloud::{CloudError, CloudProvider, Instance};
use crate::controllers::Context;
use crate::controllers::hash::class_hash;
use crate::controllers::writes::{delete_claim, update_claim_status};
use crate::state::{Interest, deleting, pool_label};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::jiff::Timestamp;
use karpenter_api::labels;
use karpenter_api::v1::{NodeClaim, find_condition, nodeclaim_conditions as cond};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A claim not launched within this long is deleted.
pub const LAUNCH_TTL: Duration = Duration::from_secs(5 * 60);
/// A launched claim without a Node after this long is deleted.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest wait before retrying a launch that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Whether condition `type_` is `True` on the claim.
pub fn is_true(claim: &NodeClaim, type_: &str) -> bool {
    find_condition(
        claim.status.as_ref().and_then(|s| s.conditions.as_deref()),
        type_,
    )
    .is_some_and(|c| c.status == "True")
}

fn age(claim: &NodeClaim) -> Duration {
    since(claim.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn since(t: Option<Timestamp>) -> Duration {
    t.map(|t| Timestamp::now().duration_since(t))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default()
}

/// The lifecycle controller and its memory of launches in flight.
pub struct Lifecycle<C> {
    ctx: Arc<Context<C>>,
    launching: Mutex<HashSet<String>>,
    /// Claim -> (retry not before, attempts).
    backoff: Mutex<HashMap<String, (Instant, u32)>>,
    /// Claims created before this instant may have an instance a previous
    /// process launched: look for it by tag before launching another.
    started: Timestamp,
    /// Instances launched whose claim does not say so yet (its label or
    /// status write failed): the next pass records these instead of
    /// launching another.
    unrecorded: Mutex<HashMap<String, Instance>>,
}

impl<C: CloudProvider + 'static> Lifecycle<C> {
    /// A lifecycle controller over `ctx`.
    pub fn new(ctx: Arc<Context<C>>) -> Self {
        Lifecycle {
            ctx,
            launching: Mutex::new(HashSet::new()),
            backoff: Mutex::new(HashMap::new()),
            started: Timestamp::now(),
            unrecorded: Mutex::new(HashMap::new()),
        }
    }

    /// Runs passes on every change (and each second, for the timeouts).
    pub async fn run(self: Arc<Self>) {
        let mut changes = self.ctx.state.waiter(Interest::AllButPods);
        // Launches run beside the passes; they belong to this future, so
        // stopping the controller (lost leadership) stops them too.
        let mut launches = tokio::task::JoinSet::new();
        self.ctx.metrics.runtime.workers("nodeclaim.lifecycle", 16);
        loop {
            for claim in self.pass().await {
                let this = self.clone();
                launches.spawn(async move { this.launch_tracked(claim).await });
            }
            while launches.try_join_next().is_some() {}
            if !changes.wait(Duration::from_secs(1)).await {
                return;
            }
        }
    }

    /// One pass over every NodeClaim; returns the claims to launch.
    pub async fn pass(self: &Arc<Self>) -> Vec<Arc<NodeClaim>> {
        let claims: Vec<_> = self
            .ctx
            .state
            .claims
            .state()
            .into_iter()
            .filter(|c| !deleting(c.as_ref()))
            .collect();
        let runtime = &self.ctx.metrics.runtime;
        let queued = runtime.enqueue("nodeclaim.lifecycle", claims.len());
        let to_launch = Mutex::new(Vec::new());
        futures::stream::iter(claims)
            .for_each_concurrent(16, |claim| {
                let to_launch = &to_launch;
                async move {
                    let work = self.reconcile(&claim);
                    match runtime.reconcile_queued("nodeclaim.lifecycle", queued, work).await {
                        Ok(true) => to_launch.lock().expect("launches").push(claim),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(nodeclaim = %claim.metadata.name.as_deref().unwrap_or_default(), error = %e, "lifecycle"),
                    }
                }
            })
            .await;
        to_launch.into_inner().expect("launches")
    }

    /// Moves a claim one step; `Ok(true)` when it needs a launch.
    async fn reconcile(self: &Arc<Self>, claim: &Arc<NodeClaim>) -> Result<bool, kube::Error> {
        let ctx = &self.ctx;
        if !is_true(claim, cond::LAUNCHED) {
            if age(claim) > LAUNCH_TTL {
                tracing::warn!(nodeclaim = ?claim.metadata.name, "not launched within 5m; deleting");
                return delete_claim(ctx, claim, "liveness").await.map(|()| false);
            }
            return Ok(self.claim_launch(claim));
        }
        if let Some(name) = &claim.metadata.name {
            self.launching.lock().expect("launching").remove(name);
        }
        let provider_id = claim
            .status
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let Some(node) = ctx.state.node_for_provider_id(&provider_id) else {
            let launched = find_condition(
                claim.status.as_ref().and_then(|s| s.conditions.as_deref()),
                cond::LAUNCHED,
            )
            .map(|c| c.last_transition_time.0);
            if since(launched) > REGISTRATION_TTL {
                tracing::warn!(nodeclaim = ?claim.metadata.name, "no node registered within 15m; deleting");
                delete_claim(ctx, claim, "liveness").await?;
            }
            return Ok(false);
        };
        if !is_true(claim, cond::REGISTERED) || !synced(claim, &node) {
            self.register(claim, &node).await?;
        } else if !is_true(claim, cond::INITIALIZED) {
            self.initialize(claim, &node).await?;
        }
        Ok(false)
    }

    /// Whether this pass should launch the claim (not backing off, not
    /// already launching); marks it launching.
    fn claim_launch(&self, claim: &NodeClaim) -> bool {
        let name = claim.metadata.name.clone().unwrap_or_default();
        if let Some((not_before, _)) = self.backoff.lock().expect("backoff").get(&name)
            && Instant::now() < *not_before
        {
            return false;
        }
        self.launching.lock().expect("launching").insert(name)
    }

    async fn launch_tracked(&self, claim: Arc<NodeClaim>) {
        let name = claim.metadata.name.clone().unwrap_or_default();
        // After a launch the name stays in `launching` until the cache shows
        // `Launched` (see `reconcile`), so a stale cache cannot launch twice.
        let launched = match self.launch(&claim).await {
            Ok(launched) => launched,
            Err(e) => {
                tracing::warn!(nodeclaim = %name, error = %e, "launch bookkeeping failed");
                false
            }
        };
        if !launched {
            self.launching.lock().expect("launching").remove(&name);
        }
    }

    fn fail_later(&self, name: &str) {
        let mut backoff = self.backoff.lock().expect("backoff");
        let entry = backoff
            .entry(name.to_string())
            .or_insert((Instant::now(), 0));
        entry.1 += 1;
        let wait = Duration::from_secs(1 << entry.1.min(6)).min(MAX_BACKOFF);
        entry.0 = Instant::now() + wait;
    }

    /// An instance a previous process launched for this claim, if any.
    async fn adoptable(&self, claim: &NodeClaim) -> Result<Option<Instance>, CloudError> {
        let created = claim.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if created.is_some_and(|c| c > self.started) {
            return Ok(None);
        }
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        let instances = self
            .ctx
            .metrics
            .cloud_call("List", self.ctx.cloud.list())
            .await?;
        Ok(instances
            .into_iter()
            .find(|i| i.tags.get(labels::NODECLAIM).map(String::as_str) == Some(name)))
    }

    /// Launches (or adopts) the claim's instance; `Ok(true)` once its status says so.
    async fn launch(&self, claim: &NodeClaim) -> Result<bool, kube::Error> {
        let ctx = &self.ctx;
        let name = claim.metadata.name.clone().unwrap_or_default();
        let Some(class) = ctx.state.class_of_claim(claim) else {
            self.fail_later(&name);
            let message = format!(
                "EC2NodeClass {:?} not found",
                claim.spec.template.node_class_ref.name
            );
            return update_claim_status(
                ctx,
                claim,
                json!({}),
                &[(cond::LAUNCHED, false, "NodeClassNotFound", &message)],
            )
            .await
            .map(|()| false);
        };
        let unrecorded = self
            .unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned();
        let adopted = match unrecorded {
            Some(instance) => Ok(Some(instance)),
            None => self.adoptable(claim).await,
        };
        let result = match adopted {
            Ok(Some(instance)) => {
                tracing::info!(nodeclaim = %name, instance = %instance.id, "adopting the instance a previous run launched");
                Ok(instance)
            }
            Ok(None) => {
                ctx.metrics
                    .cloud_call("Create", ctx.cloud.create(claim, &class))
                    .await
            }
            Err(e) => Err(e),
        };
        let instance = match result {
            Ok(instance) => instance,
            Err(
                e @ (CloudError::InsufficientCapacity { .. } | CloudError::NoCompatibleOffering(_)),
            ) => {
                if let CloudError::InsufficientCapacity { tried } = &e {
                    count_launch_failures(ctx, tried);
                }
                ctx.event(claim, true, "LaunchFailed", e.to_string());
                tracing::warn!(nodeclaim = %name, error = %e, "cannot launch; deleting the claim so its pods are provisioned again");
                return delete_claim(ctx, claim, "insufficient_capacity")
                    .await
                    .map(|()| false);
            }
            Err(e) => {
                self.fail_later(&name);
                ctx.event(claim, true, "LaunchFailed", e.to_string());
                let reason = match e {
                    CloudError::NodeClassNotReady(_) => "NodeClassNotReady",
                    CloudError::Unauthorized(_) => "Unauthorized",
                    _ => "LaunchFailed",
                };
                return update_claim_status(
                    ctx,
                    claim,
                    json!({}),
                    &[(cond::LAUNCHED, false, reason, &e.to_string())],
                )
                .await
                .map(|()| false);
            }
        };
        self.backoff.lock().expect("backoff").remove(&name);
        // Remember the instance until the claim says so: a failed write
        // must not launch a second one.
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), instance.clone());
        self.record_launch(claim, &instance).await?;
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        Ok(true)
    }

    /// Writes what was launched: labels of the instance type, status, `Launched`.
    async fn record_launch(
        &self,
        claim: &NodeClaim,
        instance: &Instance,
    ) -> Result<(), kube::Error> {
        let ctx = &self.ctx;
        let name = claim.metadata.name.clone().unwrap_or_default();
        let mut claim_labels = self.type_labels(claim, &instance.instance_type).await;
        claim_labels.insert(labels::INSTANCE_TYPE.into(), instance.instance_type.clone());
        claim_labels.insert(labels::ZONE.into(), instance.zone.clone());
        claim_labels.insert(
            labels::CAPACITY_TYPE.into(),
            instance.capacity_type.label().into(),
        );
        claim_labels.extend(claim.metadata.labels.clone().unwrap_or_default());
        let mut annotations = BTreeMap::new();
        if let Some(class) = ctx.state.class_of_claim(claim) {
            // What it was launched from, for drift (as upstream's Create stamps it).
            annotations.insert(labels::EC2NODECLASS_HASH_ANNOTATION, class_hash(&class));
            annotations.insert(
                labels::EC2NODECLASS_HASH_VERSION_ANNOTATION,
                karpenter_api::v1::EC2NODECLASS_HASH_VERSION.to_string(),
            );
            if let Some(profile) = class
                .status
                .as_ref()
                .and_then(|s| s.instance_profile.clone())
            {
                annotations.insert(labels::INSTANCE_PROFILE_ANNOTATION, profile);
            }
        }
        let api: Api<NodeClaim> = Api::all(ctx.client.clone());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"labels": claim_labels, "annotations": annotations}}),
            ),
        )
        .await?;
        let wire = |r: &crate::catalog::Resources| -> BTreeMap<String, String> {
            r.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
        };
        ctx.event(
            claim,
            false,
            "Launched",
            format!(
                "{} {} in {} ({})",
                instance.capacity_type.label(),
                instance.instance_type,
                instance.zone,
                instance.id
            ),
        );
        update_claim_status(
            ctx,
            claim,
            json!({
                "providerID": instance.provider_id,
                "imageID": instance.image_id,
                "capacity": wire(&instance.capacity),
                "allocatable": wire(&instance.allocatable),
            }),
            &[(cond::LAUNCHED, true, cond::LAUNCHED, "")],
        )
        .await
    }

    /// The well-known labels of an instance type (arch, family, size, ...).
    async fn type_labels(
        &self,
        claim: &NodeClaim,
        instance_type: &str,
    ) -> BTreeMap<String, String> {
        let ctx = &self.ctx;
        let (Some(pool), Some(class)) = (
            ctx.state.pool(&pool_label(claim)),
            ctx.state.class_of_claim(claim),
        ) else {
            return BTreeMap::new();
        };
        match ctx.cloud.instance_types(&pool, &class).await {
            Ok(types) => types
                .iter()
                .find(|t| t.name == instance_type)
                .map(|t| t.labels())
                .unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        }
    }

    async fn register(&self, claim: &NodeClaim, node: &Node) -> Result<(), kube::Error> {
        let ctx = &self.ctx;
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        // Taints and finalizers are whole lists in a merge patch, so the
        // patch is conditional on the version it was computed from. The
        // cached node is often a status heartbeat behind: on a conflict,
        // read the node and try again rather than wait for the next pass.
        let mut current = None;
        for attempt in 1..=REGISTRATION_ATTEMPTS {
            let node = current.as_ref().unwrap_or(node);
            let (node_labels, taints, finalizers, owners) = desired_node(claim, node);
            let patch = json!({
                "metadata": {
                    "labels": node_labels,
                    "finalizers": finalizers,
                    "ownerReferences": owners,
                    "resourceVersion": node.metadata.resource_version,
                },
                "spec": {"taints": taints},
            });
            match nodes
                .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < REGISTRATION_ATTEMPTS => {
                    current = Some(nodes.get(&node_name).await?);
                }
                Err(e) => return Err(e),
            }
        }
        if !is_true(claim, cond::REGISTERED) {
            ctx.metrics
                .lifecycle
                .nodes_created
                .get_or_create(&vec![
                    ("nodepool", pool_label(claim)),
                    (
                        "zone",
                        crate::state::label(claim, karpenter_api::labels::ZONE),
                    ),
                ])
                .inc();
            ctx.event(
                claim,
                false,
                "Registered",
                format!("node {node_name} joined"),
            );
        }
        tracing::debug!(nodeclaim = %claim_name, node = %node_name, "registered");
        update_claim_status(
            ctx,
            claim,
            json!({"nodeName": node_name}),
            &[(cond::REGISTERED, true, cond::REGISTERED, "")],
        )
        .await
    }

    async fn initialize(&self, claim: &NodeClaim, node: &Node) -> Result<(), kube::Error> {
        let ctx = &self.ctx;
        if let Some(waiting) = not_initialized(claim, node) {
            return update_claim_status(
                ctx,
                claim,
                json!({}),
                &[(cond::INITIALIZED, false, "NotInitialized", &waiting)],
            )
            .await;
        }
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let patch = json!({"metadata": {"labels": {labels::INITIALIZED: "true"}}});
        nodes
            .patch(
                node.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        update_claim_status(
            ctx,
            claim,
            json!({}),
            &[
                (cond::INITIALIZED, true, cond::INITIALIZED, ""),
                (cond::READY, true, cond::READY, ""),
            ],
        )
        .await
    }
}

/// Conditional Node patches registration tries before leaving the node to
/// the next pass.
const REGISTRATION_ATTEMPTS: usize = 3;

/// Whether the Node already carries everything registration syncs.
fn synced(claim: &NodeClaim, node: &Node) -> bool {
    let (want_labels, want_taints, want_finalizers, _) = desired_node(claim, node);
    let have_labels = node.metadata.labels.clone().unwrap_or_default();
    let labels_ok = want_labels
        .iter()
        .all(|(k, v)| have_labels.get(k) == Some(v));
    let have_taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    labels_ok
        && have_taints == want_taints
        && node.metadata.finalizers.clone().unwrap_or_default() == want_finalizers
}

type NodeFields = (
    BTreeMap<String, String>,
    Vec<Taint>,
    Vec<String>,
    Vec<serde_json::Value>,
);

/// The labels, taints, finalizers and owner references registration gives a Node.
fn desired_node(claim: &NodeClaim, node: &Node) -> NodeFields {
    let mut node_labels = node.metadata.labels.clone().unwrap_or_default();
    node_labels.extend(claim.metadata.labels.clone().unwrap_or_default());
    node_labels.insert(labels::REGISTERED.into(), "true".into());
    let mut taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    taints.retain(|t| t.key != labels::UNREGISTERED_TAINT_KEY);
    // A node that registered its own taints from the user data says so
    // (upstream's `karpenter.sh/do-not-sync-taints`): adding them here would
    // race with start-up taints already removed, and hide user data that
    // dropped one.
    let taints_from_user_data = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::userdata::DO_NOT_SYNC_TAINTS))
        .is_some_and(|v| v == "true");
    if !is_true(claim, cond::REGISTERED) && !taints_from_user_data {
        // Taints are synced once, at registration: later changes are the
        // cluster operator's.
        let wanted = claim
            .spec
            .template
            .taints
            .iter()
            .flatten()
            .chain(claim.spec.template.startup_taints.iter().flatten());
        for taint in wanted {
            if !taints
                .iter()
                .any(|t| t.key == taint.key && t.effect == taint.effect)
            {
                taints.push(taint.clone());
            }
        }
    }
    let mut finalizers = node.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers
        .iter()
        .any(|f| f == labels::TERMINATION_FINALIZER)
    {
        finalizers.push(labels::TERMINATION_FINALIZER.into());
    }
    let owners = vec![json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "name": claim.metadata.name,
        "uid": claim.metadata.uid,
        "blockOwnerDeletion": true,
    })];
    (node_labels, taints, finalizers, owners)
}

/// `karpenter_cloudprovider_instance_launch_failures_total`: one per
/// offering (`type/zone/capacity-type`) a launch found without capacity,
/// with EC2's reason, as upstream counts CreateFleet's errors. The zone id
/// is left empty: the offerings name zones only.
fn count_launch_failures<C: CloudProvider>(ctx: &Context<C>, tried: &[String]) {
    for offering in tried {
        let mut parts = offering.split('/');
        let (_, Some(zone), Some(capacity_type)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        ctx.metrics
            .cloud
            .launch_failures
            .get_or_create(&vec![
                ("zone", zone.to_string()),
                ("zone_id", String::new()),
                ("capacity_type", capacity_type.to_string()),
                ("reason", "InsufficientInstanceCapacity".to_string()),
            ])
            .inc();
    }
}

/// What the node still waits for before it counts as initialized, if anything.
fn not_initialized(claim: &NodeClaim, node: &Node) -> Option<String> {
    if !crate::state::node_ready(node) {
        return Some("node is not Ready".into());
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if let Some(t) = claim
        .spec
        .template
        .startup_taints
        .iter()
        .flatten()
        .find(|s| taints.iter().any(|t| t.key == s.key))
    {
        return Some(format!("start-up taint {} still present", t.key));
    }
    // What the claim's pods asked for must be registered (upstream's
    // `RequestedResourcesRegistered`): a device plugin may not have
    // advertised it yet; what nobody asked for (a GPU of a node launched
    // for CPU pods, pod ENIs without security groups for pods) is not waited for.
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    let zero = |q: &str| {
        q.parse::<karpenter_api::quantity::Quantity>()
            .is_ok_and(|q| q.nanos() == 0)
    };
    claim
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .into_iter()
        .flatten()
        .filter(|(_, q)| !zero(&q.0))
        .find(|(name, _)| allocatable.get(*name).is_none_or(|q| zero(&q.0)))
        .map(|(name, _)| format!("requested resource {name} not registered yet"))
}
