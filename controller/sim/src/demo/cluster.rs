//! A whole simulated cluster in one process: kubesim with its scheduler,
//! kubelet and workload controllers, Karpenter's CRDs, the simulated EC2
//! whose instances register Nodes through the Kubernetes API after a boot
//! delay, and an in-memory interruption queue. The demo and the controller
//! tests run on it; the controller itself is the real one
//! ([`karpenter_controller::runtime::run`]).

use crate::boot::BootMedia;
use crate::ec2::{SimEvent, SimulatedEc2, SimulationConfig};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use karpenter_controller::catalog::Catalog;
use karpenter_controller::cloud::{CloudError, Instance};
use karpenter_controller::controllers::interruption::InMemoryQueue;
use karpenter_controller::endpoints::Health;
use karpenter_controller::metrics::{Metrics, SharedMetrics};
use karpenter_controller::runtime::{self, Parts, RunError};
use karpenter_controller::settings::Settings;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Timing of the simulated cluster.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long EC2 takes to answer a launch.
    pub launch: Duration,
    /// From launch until the instance's kubelet registers the Node.
    pub boot: Duration,
    /// From registration until the Node is Ready.
    pub node_ready: Duration,
    /// How long a bound pod takes to start.
    pub pod_start: Duration,
}

impl Timing {
    /// Realistic proportions, divided by `speed` (1 = about 10 s to a ready node).
    pub fn at_speed(speed: f64) -> Self {
        let scaled = |secs: f64| Duration::from_secs_f64(secs / speed.max(0.01));
        Timing {
            launch: scaled(1.5),
            boot: scaled(5.0),
            node_ready: scaled(3.0),
            pod_start: scaled(1.0),
        }
    }
}

/// A simulated EC2 whose instances boot from their user data after `boot`
/// (the agent and the kubelet starting) and register the Node it describes
/// through `client`, as a real instance would; an instance whose user data
/// would not join `cluster` registers nothing (and says why in the log), nor
/// does one terminated while it boots; a terminated instance's Node is
/// deleted, as EKS's cloud controller manager does.
pub fn registering_ec2(
    catalog: Catalog,
    config: SimulationConfig,
    client: kube::Client,
    boot: Duration,
) -> SimulatedEc2 {
    let for_nodes = catalog.clone();
    let cluster = crate::boot::ClusterIdentity {
        name: config.cluster.name.clone(),
        endpoint: config.cluster.endpoint.clone(),
        ca_pem: String::from_utf8(
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &config.cluster.ca_bundle,
            )
            .unwrap_or_default(),
        )
        .unwrap_or_default(),
    };
    let terminated: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let terminated_at_launch = terminated.clone();
    let node_client = client.clone();
    let hook = Arc::new(move |instance: &Instance, media: &BootMedia| {
        let Some(instance_type) = for_nodes.get(&instance.instance_type).cloned() else {
            tracing::warn!(instance = %instance.id, "simulated instance of an unknown type never boots");
            return;
        };
        let machine = crate::boot::Machine {
            instance_id: instance.id.clone(),
            zone: instance.zone.clone(),
            region: "us-east-1".into(),
            instance_type,
            volumes: media.volumes.clone(),
            efa_interfaces: media.efa_interfaces,
        };
        let node = match crate::boot::boot(media.family, &media.user_data, &cluster, &machine) {
            Ok(node) => node,
            Err(e) => {
                tracing::warn!(instance = %instance.id, error = %e, "simulated instance never joins the cluster");
                return;
            }
        };
        let client = client.clone();
        let terminated = terminated_at_launch.clone();
        let provider_id = instance.provider_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(boot).await;
            // An instance terminated while it booted never registers.
            if terminated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&provider_id)
            {
                return;
            }
            let nodes: Api<Node> = Api::all(client);
            if let Err(e) = nodes.create(&PostParams::default(), &node).await {
                tracing::warn!(error = %e, "simulated kubelet could not register its Node");
            }
        });
    });
    // As the cloud controller manager on EKS: the Node of a terminated
    // instance goes (Karpenter's termination usually deleted it already).
    let on_terminate: crate::ec2::TerminateHook = Arc::new(move |provider_id: &str| {
        terminated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider_id.to_string());
        let nodes: Api<Node> = Api::all(node_client.clone());
        let provider_id = provider_id.to_string();
        tokio::spawn(async move {
            let Ok(list) = nodes.list(&Default::default()).await else {
                return;
            };
            for node in list.items {
                if node.spec.as_ref().and_then(|s| s.provider_id.as_deref())
                    == Some(provider_id.as_str())
                    && let Some(name) = node.metadata.name.as_deref()
                {
                    let _ = nodes.delete(name, &Default::default()).await;
                }
            }
        });
    });
    SimulatedEc2::new(catalog, config)
        .with_launch_hook(hook)
        .with_terminate_hook(on_terminate)
}

/// A kubesim control plane with its scheduler, kubelet and workload
/// controllers running (nodes turn Ready and pods start after `timing`'s
/// delays) and Karpenter's CRDs installed. Dropping the controllers stops them.
pub async fn control_plane(
    timing: &Timing,
) -> Result<(kubesim::Kubesim, kubesim::Controllers), kube::Error> {
    let sim = kubesim::Kubesim::new();
    let controllers = sim.start_controllers(kubesim::ControllerOptions {
        node_ready_delay: timing.node_ready,
        pod_start_delay: timing.pod_start,
        pod_shutdown: Duration::ZERO,
    });
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client());
    for (_, crd) in karpenter_api::crd::all() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    Ok((sim, controllers))
}

/// A kubesim control plane with Karpenter's CRDs and a simulated EC2.
pub struct SimCluster {
    /// The control plane.
    pub sim: kubesim::Kubesim,
    /// The cloud.
    pub ec2: Arc<SimulatedEc2>,
    /// The interruption queue the controller reads.
    pub queue: Arc<InMemoryQueue>,
    _controllers: kubesim::Controllers,
}

impl SimCluster {
    /// Starts the control plane and its controllers, installs the CRDs.
    pub async fn start(timing: &Timing, seed: u64) -> Result<Self, kube::Error> {
        let (sim, controllers) = control_plane(timing).await?;
        let client = sim.client();
        let config = SimulationConfig {
            cluster_name: "demo".into(),
            seed,
            launch_latency: timing.launch,
            ..SimulationConfig::default()
        };
        let ec2 = registering_ec2(Catalog::us_east_1().clone(), config, client, timing.boot);
        Ok(SimCluster {
            sim,
            ec2: Arc::new(ec2),
            queue: Arc::new(InMemoryQueue::default()),
            _controllers: controllers,
        })
    }

    /// An in-process client.
    pub fn client(&self) -> kube::Client {
        self.sim.client()
    }

    /// Sets the replica counts of Deployments in `namespace` (the scale subresource).
    pub async fn scale<'a>(
        &self,
        namespace: &str,
        replicas: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> Result<(), kube::Error> {
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client(), namespace);
        for (name, n) in replicas {
            deployments
                .patch_scale(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": n}})),
                )
                .await?;
        }
        Ok(())
    }

    /// Puts on the interruption queue the message AWS would send for `event`
    /// on the instance `provider_id` (see [`SimulatedEc2::event`]).
    pub fn interrupt(&self, event: SimEvent, provider_id: &str) -> Result<(), CloudError> {
        let message = self.ec2.event(event, provider_id)?;
        self.queue.send(message.to_string());
        Ok(())
    }

    /// Applies every document of a multi-document YAML (server-side apply).
    pub async fn apply(&self, yaml: &str) -> Result<usize, ApplyError> {
        apply_yaml(&self.client(), yaml).await
    }

    /// The controller, ready to run until `shutdown`: settings for cluster
    /// `demo`, this cluster's EC2 and queue. Returns its metrics as well.
    pub fn controller(
        &self,
        settings: Settings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (
        SharedMetrics,
        impl Future<Output = Result<(), RunError>> + Send + 'static,
    ) {
        self.controller_with_client(self.client(), settings, shutdown)
    }

    /// [`Self::controller`] talking to the control plane through `client`
    /// (a faulty one, say: [`kubesim::Faults`]).
    pub fn controller_with_client(
        &self,
        client: kube::Client,
        settings: Settings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (
        SharedMetrics,
        impl Future<Output = Result<(), RunError>> + Send + 'static,
    ) {
        let metrics = Arc::new(Metrics::new("simulated"));
        let parts = Parts {
            lease_client: None,
            client,
            cloud: self.ec2.clone(),
            queue: Some(self.queue.clone()),
            settings,
            metrics: metrics.clone(),
            health: Arc::new(Health::default()),
        };
        (metrics, runtime::run(parts, shutdown))
    }
}

/// Why a manifest could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A document is not a Kubernetes object (YAML, `apiVersion`/`kind`,
    /// `metadata.name`): fix the manifest.
    #[error("{0}")]
    Document(String),
    /// The API server refused or failed a request; retryable when its error is.
    #[error("{object}: {source}")]
    Api {
        /// `apiVersion kind` or `kind name`.
        object: String,
        /// What the API server said.
        source: kube::Error,
    },
}

/// Applies each document of `yaml` with server-side apply (field manager
/// `karpenter-demo`); returns how many were applied.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) -> Result<usize, ApplyError> {
    use serde::Deserialize;
    let invalid = |what: String| ApplyError::Document(what);
    let mut applied = 0;
    for document in serde_norway::Deserializer::from_str(yaml) {
        let value =
            serde_json::Value::deserialize(document).map_err(|e| invalid(format!("YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject =
            serde_json::from_value(value.clone()).map_err(|e| invalid(format!("object: {e}")))?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| invalid("a document has no apiVersion/kind".into()))?;
        let gvk = kube::api::GroupVersionKind::try_from(&types)
            .map_err(|e| invalid(format!("{}: {e}", types.api_version)))?;
        let (resource, capabilities) =
            kube::discovery::pinned_kind(client, &gvk)
                .await
                .map_err(|source| ApplyError::Api {
                    object: format!("{} {}", types.api_version, types.kind),
                    source,
                })?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or_else(|| invalid("a document has no metadata.name".into()))?;
        let api: Api<DynamicObject> = match capabilities.scope {
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
            kube::discovery::Scope::Namespaced => {
                let ns = object.metadata.namespace.as_deref().unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &resource)
            }
        };
        api.patch(
            &name,
            &PatchParams::apply("karpenter-demo").force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(|source| ApplyError::Api {
            object: format!("{} {name}", types.kind),
            source,
        })?;
        applied += 1;
    }
    Ok(applied)
}
