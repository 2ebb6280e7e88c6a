//! A simulated boot: what an EKS node's agent does with its user data, so a
//! test (or the demo) registers the Node a real instance would register, or
//! none when the real one would not join.
//!
//! The readers follow the agents' own rules (see `../shared/node-agents/`):
//! [`nodeadm`] (AL2023: base64/gzip detection, MIME parts of type
//! `application/node.eks.aws` merged in order, the required cluster fields),
//! [`bottlerocket`] (TOML with a `settings` table, the required
//! `settings.kubernetes` keys) and [`eks_bootstrap`] (AL2: the
//! `/etc/eks/bootstrap.sh` command line, its flags and `--kubelet-extra-args`).
//! Then [`boot`] checks the cluster facts against the cluster's own and works
//! out capacity and allocatable the way the agent and the kubelet do,
//! independently of the planning arithmetic in [`karpenter_controller::catalog`].
//!
//! Not modelled: containerd and network set-up, the kubelet's TLS bootstrap
//! and certificate signing, `nodeadm`'s drop-in directory, Bottlerocket's
//! rejection of unknown settings keys, shell parts (cloud-init's business),
//! a Custom AMI's own bootstrap (it cannot be simulated: it is refused).

mod bottlerocket;
pub mod ec2;
mod eks_bootstrap;
mod nodeadm;

use base64::Engine;
use k8s_openapi::api::core::v1::{Node, Taint};
use karpenter_api::labels;
use karpenter_api::quantity::Quantity;
use karpenter_controller::userdata::AmiFamily;
use serde_json::json;
use std::collections::BTreeMap;

/// What a node agent read from the user data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentConfig {
    /// The cluster name.
    pub cluster_name: String,
    /// The API server URL.
    pub endpoint: String,
    /// Base64 of the CA PEM.
    pub ca_bundle: String,
    /// Cluster DNS addresses the kubelet gets.
    pub cluster_dns: Vec<String>,
    /// Labels the kubelet registers with.
    pub labels: BTreeMap<String, String>,
    /// Taints the kubelet registers with.
    pub taints: Vec<Taint>,
    /// Configured `maxPods`.
    pub max_pods: Option<i64>,
    /// Configured `podsPerCore`.
    pub pods_per_core: Option<i64>,
    /// Configured `kubeReserved` (replaces the agent's default per key).
    pub kube_reserved: BTreeMap<String, String>,
    /// Configured `systemReserved`.
    pub system_reserved: BTreeMap<String, String>,
    /// Configured `evictionHard` (merged over the agent's defaults per key).
    pub eviction_hard: BTreeMap<String, String>,
    /// `kubeReserved` and `evictionHard` came as kubelet flags, which replace
    /// the whole map rather than the keys they name (AL2's `--kubelet-extra-args`).
    pub maps_from_flags: bool,
    /// The instance store is striped for ephemeral storage.
    pub raid0: bool,
}

/// The instance that boots: what EC2 and IMDS tell the agent.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `i-...`.
    pub instance_id: String,
    /// Availability zone.
    pub zone: String,
    /// Region.
    pub region: String,
    /// The instance type's facts.
    pub instance_type: karpenter_controller::catalog::InstanceType,
    /// EBS volumes attached at launch: device name and size in bytes.
    pub volumes: Vec<(String, i64)>,
    /// Elastic Fabric Adapters attached at launch (the EFA device plugin
    /// advertises them as `vpc.amazonaws.com/efa`).
    pub efa_interfaces: u32,
}

/// The cluster a node must join: what its API server and CA really are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// The cluster name.
    pub name: String,
    /// The API server URL.
    pub endpoint: String,
    /// The CA PEM.
    pub ca_pem: String,
}

/// Why a node would not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    /// The agent could not read its configuration from the user data.
    #[error("{agent}: {reason}")]
    Agent {
        /// `nodeadm`, `bottlerocket`, `bootstrap.sh`.
        agent: &'static str,
        /// What it says.
        reason: String,
    },
    /// The user data points at another cluster, endpoint or CA.
    #[error("the node cannot join: {0}")]
    WrongCluster(String),
}

fn agent_error(agent: &'static str, reason: impl Into<String>) -> BootError {
    BootError::Agent {
        agent,
        reason: reason.into(),
    }
}

/// What the agent of `family` reads from `user_data` (as IMDS returns it).
pub fn read(family: AmiFamily, user_data: &str) -> Result<AgentConfig, BootError> {
    match family {
        AmiFamily::Al2023 => nodeadm::read(user_data),
        AmiFamily::Bottlerocket => bottlerocket::read(user_data),
        AmiFamily::Al2 => eks_bootstrap::read(user_data),
        AmiFamily::Custom => Err(agent_error(
            "custom",
            "a Custom AMI brings its own bootstrap, which cannot be simulated",
        )),
    }
}

/// Parses `k=v:Effect` / `k:Effect` (the kubelet's `--register-with-taints`).
pub(crate) fn parse_taint(text: &str) -> Option<Taint> {
    let (key_value, effect) = text.rsplit_once(':')?;
    let (key, value) = match key_value.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string()).filter(|v| !v.is_empty())),
        None => (key_value, None),
    };
    Some(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// `k=v,k2=v2` (optionally in double quotes) into a map.
pub(crate) fn parse_pairs(text: &str, separator: char) -> BTreeMap<String, String> {
    text.trim_matches('"')
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once(separator))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Applies a kubelet command-line flag the agents pass through.
pub(crate) fn apply_kubelet_flag(config: &mut AgentConfig, flag: &str) {
    let Some((name, value)) = flag.split_once('=') else {
        return;
    };
    let value = value.trim_matches('"');
    match name {
        "--node-labels" => config.labels.extend(parse_pairs(value, '=')),
        "--register-with-taints" => config
            .taints
            .extend(value.split(',').filter_map(parse_taint)),
        "--max-pods" => config.max_pods = value.parse().ok(),
        "--pods-per-core" => config.pods_per_core = value.parse().ok(),
        "--kube-reserved" => {
            config.kube_reserved = parse_pairs(value, '=');
            config.maps_from_flags = true;
        }
        "--system-reserved" => config.system_reserved = parse_pairs(value, '='),
        "--eviction-hard" => {
            config.eviction_hard = parse_pairs(value, '<');
            config.maps_from_flags = true;
        }
        _ => {}
    }
}

const MIB: i64 = 1024 * 1024;

/// CPU the EKS agents reserve for Kubernetes: 6 % of the first core, 1 % of
/// the second, 0.5 % of the next two, 0.25 % of the rest (in millicores).
fn reserved_millicores(vcpu: i64) -> i64 {
    let total = vcpu * 1000;
    [
        (0, 1000, 600),
        (1000, 2000, 100),
        (2000, 4000, 50),
        (4000, i64::MAX, 25),
    ]
    .iter()
    .map(|(start, end, pct)| {
        if total <= *start {
            0
        } else {
            (total.min(*end) - start) * pct / 10_000
        }
    })
    .sum()
}

/// Boots `machine` from `user_data` with the agent of `family`: the Node it
/// registers, or why it would not join `cluster`.
pub fn boot(
    family: AmiFamily,
    user_data: &str,
    cluster: &ClusterIdentity,
    machine: &Machine,
) -> Result<Node, BootError> {
    let config = read(family, user_data)?;
    if config.cluster_name != cluster.name {
        return Err(BootError::WrongCluster(format!(
            "cluster name {:?}, the cluster is {:?}",
            config.cluster_name, cluster.name
        )));
    }
    if config.endpoint != cluster.endpoint {
        return Err(BootError::WrongCluster(format!(
            "API server {:?} is not the cluster's {:?}",
            config.endpoint, cluster.endpoint
        )));
    }
    let ca = base64::engine::general_purpose::STANDARD
        .decode(config.ca_bundle.trim())
        .unwrap_or_default();
    if String::from_utf8_lossy(&ca) != cluster.ca_pem {
        return Err(BootError::WrongCluster(
            "the CA in the user data is not the cluster's: the kubelet cannot verify the API server".into(),
        ));
    }
    let t = &machine.instance_type;
    let vcpu = i64::from(t.vcpu);
    // Pods: the configured maxPods, else the agent's ENI table; podsPerCore caps it.
    let eni_pods = i64::from(t.enis) * (i64::from(t.ipv4_per_eni) - 1).max(0) + 2;
    let mut pods = config.max_pods.unwrap_or(eni_pods);
    if let Some(per_core) = config.pods_per_core.filter(|p| *p > 0) {
        pods = pods.min(per_core * vcpu);
    }
    // Memory the OS reports: EC2's figure less the hypervisor and kernel's share (7.5 %).
    let memory_mib = t.memory_mib as i64 - (t.memory_mib as f64 * 0.075).ceil() as i64;
    let ephemeral_device = family.ephemeral_device().unwrap_or("/dev/xvda");
    let storage = if config.raid0 && t.local_nvme_gb > 0 {
        t.local_nvme_gb as i64 * 1_000_000_000
    } else {
        machine
            .volumes
            .iter()
            .find(|(device, _)| device == ephemeral_device)
            .map(|(_, size)| *size)
            .unwrap_or(20 * 1024 * MIB)
    };
    let mut capacity: BTreeMap<String, i64> = BTreeMap::from([
        ("cpu".into(), vcpu * 1000),
        ("memory".into(), memory_mib * MIB),
        ("pods".into(), pods),
        ("ephemeral-storage".into(), storage),
    ]);
    // The VPC resource controller (security groups for pods enabled, as the
    // simulated clusters assume) advertises the type's branch interfaces.
    let branches = karpenter_controller::catalog::branch_interfaces(&t.name);
    if branches > 0 {
        capacity.insert(
            karpenter_api::labels::RESOURCE_POD_ENI.into(),
            i64::from(branches),
        );
    }
    if machine.efa_interfaces > 0 {
        capacity.insert(
            karpenter_api::labels::RESOURCE_EFA.into(),
            i64::from(machine.efa_interfaces),
        );
    }
    for device in [&t.gpu, &t.accelerator].into_iter().flatten() {
        let name = match device.manufacturer.as_str() {
            "nvidia" => "nvidia.com/gpu",
            "amd" => "amd.com/gpu",
            "aws" => "aws.amazon.com/neuron",
            "habana" => "habana.ai/gaudi",
            _ => continue,
        };
        capacity.insert(name.into(), i64::from(device.count));
        // The Neuron device plugin advertises every device's cores as well.
        if let (Some(cores), "aws") = (device.cores, device.manufacturer.as_str()) {
            capacity.insert(
                "aws.amazon.com/neuroncore".into(),
                i64::from(device.count) * i64::from(cores),
            );
        }
    }
    // kube-reserved: the agent's defaults, replaced key by key by the configuration.
    // nodeadm and bootstrap.sh size memory from their own ENI pod count;
    // Bottlerocket from its max-pods setting.
    let reserve_pods = match family {
        AmiFamily::Bottlerocket => pods,
        _ => eni_pods,
    };
    let mut reserved: BTreeMap<String, i64> = BTreeMap::from([
        ("cpu".into(), reserved_millicores(vcpu)),
        ("memory".into(), (11 * reserve_pods + 255) * MIB),
        ("ephemeral-storage".into(), 1024 * MIB),
    ]);
    let amount = |resource: &str, text: &str| -> Option<i64> {
        let q: Quantity = text.parse().ok()?;
        let nanos = q.nanos();
        let value = if resource == "cpu" {
            nanos / 1_000_000
        } else {
            nanos / 1_000_000_000
        };
        i64::try_from(value).ok()
    };
    if config.maps_from_flags && !config.kube_reserved.is_empty() {
        reserved.clear();
    }
    for (k, v) in &config.kube_reserved {
        if let Some(a) = amount(k, v) {
            reserved.insert(k.clone(), a);
        }
    }
    for (k, v) in &config.system_reserved {
        if let Some(a) = amount(k, v) {
            *reserved.entry(k.clone()).or_insert(0) += a;
        }
    }
    // Hard eviction: the agents' defaults with the configuration's keys over them.
    let mut eviction: BTreeMap<String, String> = BTreeMap::from([
        ("memory.available".into(), "100Mi".into()),
        ("nodefs.available".into(), "10%".into()),
    ]);
    if config.maps_from_flags && !config.eviction_hard.is_empty() {
        eviction.clear();
    }
    eviction.extend(config.eviction_hard.clone());
    for (signal, resource) in [
        ("memory.available", "memory"),
        ("nodefs.available", "ephemeral-storage"),
    ] {
        let total = capacity[resource];
        let Some(setting) = eviction.get(signal) else {
            continue;
        };
        let threshold = match setting.strip_suffix('%') {
            // The kubelet's GetThresholdQuantity: float32 percentage, truncated product.
            Some(pct) => pct
                .parse::<f32>()
                .map(|p| (total as f64 * f64::from(p / 100.0)) as i64)
                .unwrap_or(0),
            None => amount(resource, setting).unwrap_or(0),
        };
        *reserved.entry(resource.into()).or_insert(0) += threshold;
    }
    let quantity = |resource: &str, value: i64| -> String {
        match resource {
            "cpu" => Quantity::from_milli(value).to_string(),
            "memory" | "ephemeral-storage" => Quantity::from_bytes(value).to_string(),
            _ => value.to_string(),
        }
    };
    let allocatable: BTreeMap<String, String> = capacity
        .iter()
        .map(|(k, v)| {
            let left = (v - reserved.get(k).copied().unwrap_or(0)).max(0);
            (k.clone(), quantity(k, left))
        })
        .collect();
    let capacity: BTreeMap<String, String> = capacity
        .iter()
        .map(|(k, v)| (k.clone(), quantity(k, *v)))
        .collect();
    let hex = machine.instance_id.trim_start_matches("i-");
    let tail = u64::from_str_radix(&hex[hex.len().saturating_sub(6)..], 16).unwrap_or(0);
    let name = format!(
        "ip-10-{}-{}-{}.ec2.internal",
        (tail >> 16) & 0xff,
        (tail >> 8) & 0xff,
        tail & 0xff
    );
    // The kubelet's and the cloud controller manager's labels, then the user data's.
    let mut node_labels = BTreeMap::from([
        (labels::HOSTNAME.to_string(), name.clone()),
        (labels::ARCH.to_string(), t.architecture.clone()),
        (labels::OS.to_string(), "linux".to_string()),
        (labels::INSTANCE_TYPE.to_string(), t.name.clone()),
        (labels::ZONE.to_string(), machine.zone.clone()),
        (labels::REGION.to_string(), machine.region.clone()),
    ]);
    node_labels.extend(config.labels.clone());
    let node = json!({
        "metadata": {"name": name, "labels": node_labels},
        "spec": {
            "providerID": format!("aws:///{}/{}", machine.zone, machine.instance_id),
            "taints": config.taints,
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "nodeInfo": {"kubeletVersion": "v1.33.0-kubesim", "architecture": t.architecture,
                "operatingSystem": "linux", "containerRuntimeVersion": "kubesim://1",
                "kernelVersion": "", "osImage": format!("{family:?}"), "kubeProxyVersion": "",
                "machineID": "", "systemUUID": "", "bootID": ""},
        },
    });
    serde_json::from_value(node).map_err(|e| agent_error("kubelet", e.to_string()))
}

/// What an instance boots from: its AMI family's agent, the user data IMDS
/// returns, and the EBS volumes of its launch template.
#[derive(Debug, Clone)]
pub struct BootMedia {
    /// Which agent reads the user data.
    pub family: AmiFamily,
    /// The user data, plain text.
    pub user_data: String,
    /// Device name and size in bytes of each EBS volume.
    pub volumes: Vec<(String, i64)>,
    /// Elastic Fabric Adapters its launch attaches.
    pub efa_interfaces: u32,
}

/// A fixed CA certificate that identifies the simulated cluster (the demo's
/// and the fast tests' in-process kubesim, which serves no TLS of its own).
pub const SIM_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBfTCCASOgAwIBAgIUa2FycGVudGVyLXJzIHNpbXVsYXRlZCBjbHVzdGVyMAoG\nCCqGSM49BAMCMBUxEzARBgNVBAMMCmt1YmVzaW0tY2EwHhcNMjYwMTAxMDAwMDAw\n-----END CERTIFICATE-----\n";

/// The simulated cluster: `demo` at `https://kubesim.demo.internal`, with [`SIM_CA_PEM`].
pub fn sim_cluster_identity() -> ClusterIdentity {
    ClusterIdentity {
        name: "demo".into(),
        endpoint: "https://kubesim.demo.internal".into(),
        ca_pem: SIM_CA_PEM.into(),
    }
}

/// What the controller knows of the simulated cluster (service CIDR `10.100.0.0/16`).
pub fn sim_cluster_info() -> karpenter_controller::userdata::ClusterInfo {
    let id = sim_cluster_identity();
    karpenter_controller::userdata::ClusterInfo {
        name: id.name,
        endpoint: id.endpoint,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(id.ca_pem),
        cidr: Some("10.100.0.0/16".into()),
        dns_ip: Some("10.100.0.10".into()),
    }
}

/// The EBS volumes a launch of `class` attaches (its block device mappings,
/// else its family's defaults): device name and size in bytes, as the
/// launch template gives them to EC2.
pub fn launch_volumes(class: &karpenter_api::v1::EC2NodeClass) -> Vec<(String, i64)> {
    let family = AmiFamily::of(class);
    let mappings = class.spec.block_device_mappings.clone().unwrap_or_else(|| {
        karpenter_controller::cloud::aws::launch_template::default_block_devices(family)
    });
    mappings
        .iter()
        .filter_map(|m| {
            let size: Quantity = m.ebs.as_ref()?.volume_size.as_deref()?.parse().ok()?;
            let bytes = i64::try_from(size.nanos() / 1_000_000_000).ok()?;
            Some((m.device_name.clone()?, bytes))
        })
        .collect()
}
