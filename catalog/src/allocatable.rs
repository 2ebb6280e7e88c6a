//! Capacity and allocatable as upstream Karpenter's AWS provider computes them:
//! memory less the VM overhead (7.5 % by default), pods from ENI limits
//! (`ENIs x (IPs per ENI - 1) + 2`) unless kubelet settings say otherwise,
//! kube-reserved CPU by ranges and memory as `11Mi x pods + 255Mi`, and the
//! hard eviction thresholds (`memory.available` 100Mi, `nodefs.available` 10 %).
//! `karpenter_sim::boot` computes the same figures independently, the way the node
//! agents and the kubelet do, and a test holds the two together.

use super::InstanceType;
use karpenter_api::quantity::Quantity;
use karpenter_api::v1::AmiFamily;
use karpenter_api::v1::{BlockDeviceMapping, EC2NodeClass, KubeletConfiguration};
use std::collections::BTreeMap;

/// Resource name -> amount (`cpu`, `memory`, `pods`, `ephemeral-storage`, `nvidia.com/gpu`, ...).
pub type Resources = BTreeMap<String, Quantity>;

const MIB: i64 = 1024 * 1024;

/// The node settings that change capacity: the EC2NodeClass's kubelet block,
/// its root volume, and the controller's VM memory overhead setting.
#[derive(Debug, Clone)]
pub struct KubeletSettings {
    /// `kubelet.maxPods`.
    pub max_pods: Option<i64>,
    /// `kubelet.podsPerCore`.
    pub pods_per_core: Option<i64>,
    /// `kubelet.kubeReserved` (replaces the computed defaults per resource).
    pub kube_reserved: BTreeMap<String, String>,
    /// `kubelet.systemReserved`.
    pub system_reserved: BTreeMap<String, String>,
    /// `kubelet.evictionHard`. Soft thresholds are left out, as the kubelet
    /// leaves them out of the allocatable it reports (upstream plans with the
    /// larger of the two; we plan with what the node will say).
    pub eviction: Vec<BTreeMap<String, String>>,
    /// Root volume size (ephemeral storage); 20Gi as the AL2023 default.
    pub root_volume: Quantity,
    /// `instanceStorePolicy: RAID0`: ephemeral storage is the instance store
    /// where the type has one.
    pub raid0: bool,
    /// Which pod count the node agent's default kube-reserved memory
    /// (`11Mi x pods + 255Mi`) uses.
    pub reserved_memory_pods: ReservedMemoryPods,
    /// `VM_MEMORY_OVERHEAD_PERCENT` (0.075 by default).
    pub vm_memory_overhead_percent: f64,
    /// `RESERVED_ENIS`: network interfaces kept out of pod networking, so
    /// fewer pods fit under the ENI limit (0 by default).
    pub reserved_enis: u32,
    /// The kubelet settings reach the node as command-line flags (AL2's
    /// `--kubelet-extra-args`), so a `kubeReserved` or `evictionHard` map
    /// replaces the agent's defaults whole instead of key by key.
    pub maps_replace_defaults: bool,
}

/// The controller-wide settings the node arithmetic takes
/// (`VM_MEMORY_OVERHEAD_PERCENT`, `RESERVED_ENIS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeOverheads {
    /// Fraction of memory the hypervisor keeps.
    pub vm_memory_overhead_percent: f64,
    /// Network interfaces kept out of pod networking.
    pub reserved_enis: u32,
}

impl Default for NodeOverheads {
    fn default() -> Self {
        NodeOverheads {
            vm_memory_overhead_percent: 0.075,
            reserved_enis: 0,
        }
    }
}

impl Default for KubeletSettings {
    fn default() -> Self {
        KubeletSettings {
            max_pods: None,
            pods_per_core: None,
            kube_reserved: BTreeMap::new(),
            system_reserved: BTreeMap::new(),
            eviction: Vec::new(),
            root_volume: Quantity::from_bytes(20 * 1024 * MIB),
            raid0: false,
            reserved_memory_pods: ReservedMemoryPods::MaxPods,
            vm_memory_overhead_percent: 0.075,
            reserved_enis: 0,
            maps_replace_defaults: false,
        }
    }
}

/// The pod count behind the default kube-reserved memory, per node agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedMemoryPods {
    /// The node's max pods (Bottlerocket derives it from `max-pods`; upstream
    /// Karpenter's arithmetic for every family).
    MaxPods,
    /// The ENI-limited pod count, whatever `maxPods` says: nodeadm (AL2023)
    /// and AL2's `bootstrap.sh` compute kube-reserved from their own table
    /// before the kubelet reads the configured `maxPods`.
    EniLimit,
}

impl KubeletSettings {
    /// Settings from an EC2NodeClass's kubelet block (unparseable values are left
    /// out; validation reports them before anything launches).
    pub fn from_kubelet(kubelet: Option<&KubeletConfiguration>) -> Self {
        let mut settings = KubeletSettings::default();
        if let Some(k) = kubelet {
            settings.max_pods = k.max_pods.map(i64::from);
            settings.pods_per_core = k.pods_per_core.map(i64::from);
            settings.kube_reserved = k.kube_reserved.clone().unwrap_or_default();
            settings.system_reserved = k.system_reserved.clone().unwrap_or_default();
            settings.eviction = k.eviction_hard.iter().cloned().collect();
        }
        settings
    }

    /// Settings for nodes of `class`: its kubelet block, root volume (or
    /// instance store with RAID0) and AMI family, as upstream's
    /// `ephemeralStorage` picks the volume.
    pub fn for_class(class: &EC2NodeClass) -> Self {
        Self::for_class_with(class, NodeOverheads::default())
    }

    /// [`Self::for_class`] with the controller-wide settings of `overheads`.
    pub fn for_class_with(class: &EC2NodeClass, overheads: NodeOverheads) -> Self {
        let mut settings = Self::for_class_only(class);
        settings.vm_memory_overhead_percent = overheads.vm_memory_overhead_percent;
        settings.reserved_enis = overheads.reserved_enis;
        settings
    }

    fn for_class_only(class: &EC2NodeClass) -> Self {
        let mut settings = KubeletSettings::from_kubelet(class.spec.kubelet.as_ref());
        let family = AmiFamily::of(class);
        settings.reserved_memory_pods = match family {
            AmiFamily::Al2023 | AmiFamily::Al2 => ReservedMemoryPods::EniLimit,
            AmiFamily::Bottlerocket | AmiFamily::Custom => ReservedMemoryPods::MaxPods,
        };
        settings.raid0 = class.spec.instance_store_policy.as_deref() == Some("RAID0");
        settings.maps_replace_defaults = family == AmiFamily::Al2;
        let size = |m: &BlockDeviceMapping| -> Option<Quantity> {
            m.ebs.as_ref()?.volume_size.as_deref()?.parse().ok()
        };
        let mappings = class
            .spec
            .block_device_mappings
            .as_deref()
            .unwrap_or_default();
        let chosen = mappings
            .iter()
            .find(|m| m.root_volume == Some(true))
            .and_then(size)
            .or_else(|| match family.ephemeral_device() {
                Some(device) => mappings
                    .iter()
                    .find(|m| m.device_name.as_deref() == Some(device))
                    .and_then(size),
                None => mappings.last().and_then(size),
            });
        if let Some(volume) = chosen {
            settings.root_volume = volume;
        }
        settings
    }
}

fn add(total: &mut Resources, name: &str, q: Quantity) {
    let entry = total.entry(name.to_string()).or_insert(Quantity::ZERO);
    *entry = entry.checked_add(q).unwrap_or(*entry);
}

impl InstanceType {
    /// `(ENIs - reserved) x (IPv4 addresses per ENI - 1) + 2`: the AWS VPC
    /// CNI's limit; 0 when the reserved ENIs leave none.
    pub fn eni_limited_pods(&self, reserved_enis: u32) -> i64 {
        let usable = i64::from(self.enis.saturating_sub(reserved_enis));
        if usable == 0 {
            return 0;
        }
        usable * (i64::from(self.ipv4_per_eni) - 1).max(0) + 2
    }

    /// Pods the node admits: kubelet `maxPods`, else the ENI limit less
    /// `RESERVED_ENIS`; capped by `podsPerCore`.
    pub fn max_pods(&self, settings: &KubeletSettings) -> i64 {
        let pods = settings
            .max_pods
            .unwrap_or_else(|| self.eni_limited_pods(settings.reserved_enis));
        match settings.pods_per_core.filter(|p| *p > 0) {
            Some(per_core) => pods.min(per_core * i64::from(self.vcpu)),
            None => pods,
        }
    }

    /// The node's capacity: CPU, memory less the VM overhead, pods, ephemeral
    /// storage, and GPUs / accelerators as extended resources.
    pub fn capacity(&self, settings: &KubeletSettings) -> Resources {
        let mut capacity = Resources::new();
        capacity.insert("cpu".into(), Quantity::from_units(i64::from(self.vcpu)));
        let overhead_mib =
            (self.memory_mib as f64 * settings.vm_memory_overhead_percent).ceil() as i64;
        capacity.insert(
            "memory".into(),
            Quantity::from_bytes((self.memory_mib as i64 - overhead_mib) * MIB),
        );
        capacity.insert("pods".into(), Quantity::from_units(self.max_pods(settings)));
        let storage = if settings.raid0 && self.local_nvme_gb > 0 {
            Quantity::from_bytes(self.local_nvme_gb as i64 * 1_000_000_000)
        } else {
            settings.root_volume
        };
        capacity.insert("ephemeral-storage".into(), storage);
        // The EFA device plugin advertises the adapters attached; a launch
        // attaches them all when the NodeClaim asks for EFA (upstream's
        // instance type capacity and `instance.go` `getEFACountForInstance`).
        // Security groups for pods: the VPC resource controller advertises
        // the branch interfaces of trunking-compatible types.
        let branches = super::branch_interfaces(&self.name);
        if branches > 0 {
            capacity.insert(
                karpenter_api::labels::RESOURCE_POD_ENI.into(),
                Quantity::from_units(i64::from(branches)),
            );
        }
        if self.efas > 0 {
            capacity.insert(
                karpenter_api::labels::RESOURCE_EFA.into(),
                Quantity::from_units(i64::from(self.efas)),
            );
        }
        for device in [&self.gpu, &self.accelerator].into_iter().flatten() {
            let resource = match (device.manufacturer.as_str(), device.name.as_str()) {
                ("nvidia", _) => "nvidia.com/gpu",
                ("amd", _) => "amd.com/gpu",
                ("aws", _) => "aws.amazon.com/neuron",
                ("habana", _) => "habana.ai/gaudi",
                _ => continue,
            };
            capacity.insert(
                resource.into(),
                Quantity::from_units(i64::from(device.count)),
            );
            // The Neuron device plugin advertises the devices' cores too.
            if let (Some(cores), "aws") = (device.cores, device.manufacturer.as_str()) {
                capacity.insert(
                    "aws.amazon.com/neuroncore".into(),
                    Quantity::from_units(i64::from(device.count) * i64::from(cores)),
                );
            }
        }
        capacity
    }

    /// kube-reserved: CPU 6 % of the first core, 1 % of the second, 0.5 % of the
    /// next two and 0.25 % of the rest; memory `11Mi x pods + 255Mi`; 1Gi of
    /// ephemeral storage. Values in `kubelet.kubeReserved` replace these.
    pub fn kube_reserved(&self, settings: &KubeletSettings) -> Resources {
        let millicores = i64::from(self.vcpu) * 1000;
        let ranges: [(i64, i64, f64); 4] = [
            (0, 1000, 0.06),
            (1000, 2000, 0.01),
            (2000, 4000, 0.005),
            (4000, i64::MAX, 0.0025),
        ];
        let cpu: f64 = ranges
            .iter()
            .map(|(start, end, pct)| (millicores.min(*end) - start).max(0) as f64 * pct)
            .sum();
        let mut reserved = Resources::new();
        reserved.insert("cpu".into(), Quantity::from_milli(cpu.round() as i64));
        let pods = match settings.reserved_memory_pods {
            ReservedMemoryPods::MaxPods => self.max_pods(settings),
            // Upstream: the ENI limit without reserved ENIs.
            ReservedMemoryPods::EniLimit => self.eni_limited_pods(0),
        };
        reserved.insert(
            "memory".into(),
            Quantity::from_bytes((11 * pods + 255) * MIB),
        );
        reserved.insert("ephemeral-storage".into(), Quantity::from_bytes(1024 * MIB));
        if settings.maps_replace_defaults && !settings.kube_reserved.is_empty() {
            reserved.clear();
        }
        for (name, value) in &settings.kube_reserved {
            if let Ok(q) = value.parse() {
                reserved.insert(name.clone(), q);
            }
        }
        reserved
    }

    /// Eviction thresholds: `memory.available` 100Mi and `nodefs.available` 10 %
    /// by default; `kubelet.evictionHard` replaces each it names.
    pub fn eviction_threshold(&self, settings: &KubeletSettings) -> Resources {
        let capacity = self.capacity(settings);
        let amount = |signal: &str, of: &str, default: &str| -> Quantity {
            let total = capacity.get(of).copied().unwrap_or(Quantity::ZERO);
            let parse = |text: &str| -> Option<Quantity> {
                match text.strip_suffix('%') {
                    // The kubelet's own arithmetic: a float32 fraction, the product truncated.
                    Some(pct) => {
                        let fraction = pct.parse::<f32>().ok()? / 100.0;
                        let bytes = (total.nanos() / 1_000_000_000) as f64;
                        Some(Quantity::from_bytes((bytes * f64::from(fraction)) as i64))
                    }
                    None => text.parse().ok(),
                }
            };
            let configured = settings
                .eviction
                .iter()
                .filter_map(|m| m.get(signal))
                .filter_map(|v| parse(v))
                .max();
            let defaults_replaced =
                settings.maps_replace_defaults && settings.eviction.iter().any(|m| !m.is_empty());
            configured
                .or_else(|| (!defaults_replaced).then(|| parse(default)).flatten())
                .unwrap_or(Quantity::ZERO)
        };
        let mut threshold = Resources::new();
        threshold.insert(
            "memory".into(),
            amount("memory.available", "memory", "100Mi"),
        );
        threshold.insert(
            "ephemeral-storage".into(),
            amount("nodefs.available", "ephemeral-storage", "10%"),
        );
        threshold
    }

    /// What pods may request: capacity less kube-reserved, system-reserved and the
    /// eviction threshold (never below zero).
    pub fn allocatable(&self, settings: &KubeletSettings) -> Resources {
        let mut overhead = self.kube_reserved(settings);
        for (name, value) in &settings.system_reserved {
            if let Ok(q) = value.parse() {
                add(&mut overhead, name, q);
            }
        }
        for (name, q) in self.eviction_threshold(settings) {
            add(&mut overhead, &name, q);
        }
        self.capacity(settings)
            .into_iter()
            .map(|(name, total)| {
                let less = overhead.get(&name).copied().unwrap_or(Quantity::ZERO);
                let left = total
                    .checked_sub(less)
                    .filter(|q| q.nanos() > 0)
                    .unwrap_or(Quantity::ZERO);
                (name, left.with_format(total.format()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reserved_enis_lower_max_pods_but_not_kube_reserved() {
        let catalog = crate::Catalog::us_east_1();
        let m5 = catalog.get("m5.large").unwrap();
        let plain = KubeletSettings::default();
        let reserved = KubeletSettings {
            reserved_enis: 1,
            ..KubeletSettings::default()
        };
        // m5.large: 3 ENIs x 10 addresses: 29 pods; one reserved leaves 2 ENIs.
        assert_eq!(m5.max_pods(&plain), 29);
        assert_eq!(m5.max_pods(&reserved), 20);
        let all = KubeletSettings {
            reserved_enis: 3,
            ..KubeletSettings::default()
        };
        assert_eq!(m5.max_pods(&all), 0);
        let eni = KubeletSettings {
            reserved_memory_pods: ReservedMemoryPods::EniLimit,
            ..reserved.clone()
        };
        assert_eq!(
            m5.kube_reserved(&eni)["memory"],
            m5.kube_reserved(&KubeletSettings {
                reserved_memory_pods: ReservedMemoryPods::EniLimit,
                ..plain.clone()
            })["memory"]
        );
    }

    use super::*;
    use crate::Catalog;

    fn q(text: &str) -> Quantity {
        text.parse().unwrap()
    }

    /// m5.large: the figures Karpenter users see (29 pods, 1930m CPU, 6903Mi).
    #[test]
    fn m5_large_matches_upstream() {
        let m5 = Catalog::us_east_1().get("m5.large").unwrap();
        let settings = KubeletSettings::default();
        assert_eq!(m5.max_pods(&settings), 29);
        let capacity = m5.capacity(&settings);
        assert_eq!(capacity["memory"], q("7577Mi"));
        let reserved = m5.kube_reserved(&settings);
        assert_eq!(
            (reserved["cpu"], reserved["memory"]),
            (q("70m"), q("574Mi"))
        );
        let allocatable = m5.allocatable(&settings);
        assert_eq!(allocatable["cpu"], q("1930m"));
        assert_eq!(allocatable["memory"], q("6903Mi"));
        assert_eq!(allocatable["pods"], q("29"));
        // 20Gi - 1Gi reserved - 10 % eviction: the kubelet's float32 10 % of
        // 20Gi is 32 bytes over 2Gi, so 17Gi less 32 bytes.
        assert_eq!(
            allocatable["ephemeral-storage"],
            Quantity::from_bytes(17 * 1024 * MIB - 32)
        );
    }

    #[test]
    fn kube_reserved_cpu_by_ranges() {
        let catalog = Catalog::us_east_1();
        let reserved = |name: &str| {
            catalog
                .get(name)
                .unwrap()
                .kube_reserved(&KubeletSettings::default())["cpu"]
        };
        assert_eq!(reserved("m5.xlarge"), q("80m")); // 60 + 10 + 5 + 5
        assert_eq!(reserved("m5.4xlarge"), q("110m")); // 80 + 12 x 2.5
        assert_eq!(reserved("t3.micro"), q("70m"));
    }

    #[test]
    fn kubelet_settings_change_pods_and_reservations() {
        let m5 = Catalog::us_east_1().get("m5.2xlarge").unwrap();
        let mut settings = KubeletSettings {
            max_pods: Some(110),
            ..Default::default()
        };
        assert_eq!(m5.max_pods(&settings), 110);
        settings.pods_per_core = Some(4);
        assert_eq!(m5.max_pods(&settings), 32);
        settings.kube_reserved.insert("cpu".into(), "500m".into());
        settings
            .system_reserved
            .insert("memory".into(), "1Gi".into());
        settings
            .eviction
            .push([("memory.available".to_string(), "5%".to_string())].into());
        let alloc = m5.allocatable(&settings);
        assert_eq!(alloc["cpu"], q("7500m"));
        // 32768Mi - 2458Mi overhead = 30310Mi; - (11x32+255)Mi - 1Gi - 5 % of 30310Mi.
        let capacity = 30310 * MIB;
        let expected = capacity
            - (11 * 32 + 255) * MIB
            - 1024 * MIB
            - (capacity as f64 * f64::from(5f32 / 100.0)) as i64;
        assert_eq!(alloc["memory"], Quantity::from_bytes(expected));
    }

    #[test]
    fn gpus_and_accelerators_are_extended_resources() {
        let catalog = Catalog::us_east_1();
        let p4d = catalog
            .get("p4d.24xlarge")
            .unwrap()
            .capacity(&KubeletSettings::default());
        assert_eq!(p4d["nvidia.com/gpu"], q("8"));
        let inf2 = catalog
            .get("inf2.xlarge")
            .unwrap()
            .capacity(&KubeletSettings::default());
        assert_eq!(inf2["aws.amazon.com/neuron"], q("1"));
        assert_eq!(
            inf2["aws.amazon.com/neuroncore"],
            q("2"),
            "1 device x 2 cores"
        );
        let trn1 = catalog
            .get("trn1.32xlarge")
            .unwrap()
            .capacity(&KubeletSettings::default());
        assert_eq!(
            trn1["aws.amazon.com/neuroncore"],
            q("32"),
            "16 devices x 2 cores"
        );
    }
}
