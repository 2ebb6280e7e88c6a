//! The instance catalog: what each EC2 instance type offers, where, and at what price.
//!
//! ```
//! use karpenter_catalog::{Catalog, CapacityType};
//! let catalog = Catalog::us_east_1();
//! let m5 = catalog.get("m5.large").unwrap();
//! assert_eq!((m5.vcpu, m5.memory_mib), (2, 8192));
//! assert_eq!(m5.labels()["karpenter.k8s.aws/instance-family"], "m5");
//! let cheapest = m5.offerings.iter().filter(|o| o.capacity_type == CapacityType::Spot)
//!     .map(|o| o.price).fold(f64::MAX, f64::min);
//! assert!(cheapest < m5.on_demand_price);
//! ```

mod allocatable;
pub mod generate;
mod pod_eni;
mod pricing;

pub use allocatable::{KubeletSettings, NodeOverheads, ReservedMemoryPods, Resources};
pub use pod_eni::branch_interfaces;
pub use pricing::spot_price;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// How an instance is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    /// A capacity reservation.
    Reserved,
    /// Spot capacity (interruptible).
    Spot,
    /// On-demand capacity.
    OnDemand,
}

impl CapacityType {
    /// The `karpenter.sh/capacity-type` label value.
    pub fn label(self) -> &'static str {
        match self {
            CapacityType::Reserved => karpenter_api::labels::CAPACITY_TYPE_RESERVED,
            CapacityType::Spot => karpenter_api::labels::CAPACITY_TYPE_SPOT,
            CapacityType::OnDemand => karpenter_api::labels::CAPACITY_TYPE_ON_DEMAND,
        }
    }
}

/// Where and how an instance type can be bought, and for how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// Availability zone (`us-east-1a`).
    pub zone: String,
    /// On-demand, spot or reserved.
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    /// False once a launch failed for lack of capacity (until it expires).
    pub available: bool,
}

/// A GPU or accelerator model on an instance type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Model (`a100`, `inferentia2`), lower case as the label carries it.
    pub name: String,
    /// Maker (`nvidia`, `aws`, `amd`, `habana`).
    pub manufacturer: String,
    /// How many.
    pub count: u32,
    /// Memory per device in MiB.
    pub memory_mib: u64,
    /// Cores per device, for Neuron devices (`aws.amazon.com/neuroncore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An EC2 instance type as the catalog stores it (the generated data's schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    /// `m5.large`.
    pub name: String,
    /// `amd64` or `arm64` (the `kubernetes.io/arch` value).
    pub architecture: String,
    /// vCPUs.
    pub vcpu: u32,
    /// Memory in MiB (before the VM overhead).
    pub memory_mib: u64,
    /// `intel`, `amd`, `aws`.
    pub cpu_manufacturer: String,
    /// Sustained clock speed in MHz, when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_clock_mhz: Option<u32>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Device>,
    /// Other accelerators (Inferentia, Trainium, Gaudi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<Device>,
    /// Local NVMe instance storage in GB (0 when none).
    pub local_nvme_gb: u64,
    /// Baseline network bandwidth in Mbps.
    pub network_bandwidth_mbps: u64,
    /// Maximum EBS bandwidth in Mbps.
    pub ebs_bandwidth_mbps: u64,
    /// `nitro`, `xen`, or empty for bare metal.
    pub hypervisor: String,
    /// Network interfaces the instance can attach.
    pub enis: u32,
    /// IPv4 addresses per interface.
    pub ipv4_per_eni: u32,
    /// Elastic Fabric Adapters the type can attach (`MaximumEfaInterfaces`;
    /// 0 when it has none): its `vpc.amazonaws.com/efa` capacity.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub efas: u32,
    /// Encrypts traffic between instances.
    pub encryption_in_transit: bool,
    /// Bare-metal instance.
    pub bare_metal: bool,
    /// On-demand price in USD per hour.
    pub on_demand_price: f64,
    /// Zones of the region that offer the type.
    pub zones: Vec<String>,
    /// Whether spot capacity is sold.
    pub spot: bool,
    /// Every offering (zone x capacity type), built from the above when loaded.
    #[serde(skip)]
    pub offerings: Vec<Offering>,
}

/// Family, category, generation and size parsed from a type name (upstream's rule:
/// `^([a-z]+)(-[0-9]+tb)?([0-9]+)` on the family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    /// `m5d` of `m5d.large`.
    pub family: String,
    /// `m`.
    pub category: String,
    /// `5`.
    pub generation: Option<u32>,
    /// `large`.
    pub size: String,
}

/// Splits `m5d.large`, `c7i-flex.2xlarge`, `u-6tb1.56xlarge`.
pub fn parse_name(name: &str) -> NameParts {
    let (family, size) = name.split_once('.').unwrap_or((name, ""));
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    let mut rest = &family[category.len()..];
    if let Some(after_tb) = rest
        .strip_prefix('-')
        .and_then(|r| r.find("tb").map(|i| &r[i + 2..]))
    {
        rest = after_tb;
    }
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    NameParts {
        family: family.to_string(),
        category,
        generation: digits.parse().ok(),
        size: size.to_string(),
    }
}

impl InstanceType {
    /// Fills `offerings`: on-demand at the listed price and, where sold, spot at
    /// the modelled price, in every zone.
    pub fn with_offerings(self) -> Self {
        let (name, on_demand) = (self.name.clone(), self.on_demand_price);
        self.with_spot_prices(|zone| Some(spot_price(&name, zone, on_demand)))
    }

    /// Fills `offerings` in every zone: on-demand at the listed price and, where
    /// spot is sold and `spot_price(zone)` knows a price, spot at that price.
    pub fn with_spot_prices(mut self, spot_price: impl Fn(&str) -> Option<f64>) -> Self {
        self.offerings = self
            .zones
            .iter()
            .flat_map(|zone| {
                let on_demand = Offering {
                    zone: zone.clone(),
                    capacity_type: CapacityType::OnDemand,
                    price: self.on_demand_price,
                    available: true,
                };
                let spot = self
                    .spot
                    .then(|| spot_price(zone))
                    .flatten()
                    .map(|price| Offering {
                        zone: zone.clone(),
                        capacity_type: CapacityType::Spot,
                        price,
                        available: true,
                    });
                std::iter::once(on_demand).chain(spot)
            })
            .collect();
        self
    }

    /// Every Karpenter well-known label this type carries (not zone or capacity type,
    /// which belong to offerings).
    pub fn labels(&self) -> BTreeMap<String, String> {
        use karpenter_api::labels as l;
        let parts = parse_name(&self.name);
        let mut labels = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            labels.insert(k.to_string(), v);
        };
        put(l::INSTANCE_TYPE, self.name.clone());
        put(l::ARCH, self.architecture.clone());
        put(l::OS, "linux".into());
        put(
            "karpenter.k8s.aws/instance-category",
            parts.category.clone(),
        );
        put("karpenter.k8s.aws/instance-family", parts.family.clone());
        if let Some(generation) = parts.generation {
            put(
                "karpenter.k8s.aws/instance-generation",
                generation.to_string(),
            );
        }
        put("karpenter.k8s.aws/instance-size", parts.size.clone());
        put("karpenter.k8s.aws/instance-cpu", self.vcpu.to_string());
        put(
            "karpenter.k8s.aws/instance-cpu-manufacturer",
            self.cpu_manufacturer.clone(),
        );
        if let Some(mhz) = self.cpu_clock_mhz {
            put(
                "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
                mhz.to_string(),
            );
        }
        put(
            "karpenter.k8s.aws/instance-memory",
            self.memory_mib.to_string(),
        );
        put(
            "karpenter.k8s.aws/instance-ebs-bandwidth",
            self.ebs_bandwidth_mbps.to_string(),
        );
        put(
            "karpenter.k8s.aws/instance-network-bandwidth",
            self.network_bandwidth_mbps.to_string(),
        );
        put(
            "karpenter.k8s.aws/instance-hypervisor",
            self.hypervisor.clone(),
        );
        put(
            "karpenter.k8s.aws/instance-encryption-in-transit-supported",
            self.encryption_in_transit.to_string(),
        );
        if self.local_nvme_gb > 0 {
            put(
                "karpenter.k8s.aws/instance-local-nvme",
                self.local_nvme_gb.to_string(),
            );
        }
        if let Some(gpu) = &self.gpu {
            put("karpenter.k8s.aws/instance-gpu-name", gpu.name.clone());
            put(
                "karpenter.k8s.aws/instance-gpu-manufacturer",
                gpu.manufacturer.clone(),
            );
            put(
                "karpenter.k8s.aws/instance-gpu-count",
                gpu.count.to_string(),
            );
            put(
                "karpenter.k8s.aws/instance-gpu-memory",
                gpu.memory_mib.to_string(),
            );
        }
        if let Some(acc) = &self.accelerator {
            put(
                "karpenter.k8s.aws/instance-accelerator-name",
                acc.name.clone(),
            );
            put(
                "karpenter.k8s.aws/instance-accelerator-manufacturer",
                acc.manufacturer.clone(),
            );
            put(
                "karpenter.k8s.aws/instance-accelerator-count",
                acc.count.to_string(),
            );
        }
        if parts.family.ends_with("-flex") {
            put("karpenter.k8s.aws/instance-capability-flex", "true".into());
        }
        labels
    }

    /// The cheapest available offering in one of `zones` (all when empty) of one of `capacity_types`.
    pub fn cheapest(&self, zones: &[&str], capacity_types: &[CapacityType]) -> Option<&Offering> {
        self.offerings
            .iter()
            .filter(|o| o.available && capacity_types.contains(&o.capacity_type))
            .filter(|o| zones.is_empty() || zones.contains(&o.zone.as_str()))
            .min_by(|a, b| a.price.total_cmp(&b.price))
    }
}

/// The offering a launched node runs on, from its labels (instance type,
/// zone, capacity type), among `types`.
pub fn offering_of<'a>(
    types: &'a [InstanceType],
    labels: Option<&BTreeMap<String, String>>,
) -> Option<&'a Offering> {
    let get = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    types
        .iter()
        .find(|t| Some(t.name.as_str()) == get(karpenter_api::labels::INSTANCE_TYPE))?
        .offerings
        .iter()
        .find(|o| {
            Some(o.zone.as_str()) == get(karpenter_api::labels::ZONE)
                && Some(o.capacity_type.label()) == get(karpenter_api::labels::CAPACITY_TYPE)
        })
}

/// A set of instance types, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    types: BTreeMap<String, InstanceType>,
}

/// The generated us-east-1 data (see [`generate`]).
pub const US_EAST_1_JSON: &str = include_str!("../data/us-east-1.json");

impl Catalog {
    /// A catalog of the given types.
    pub fn new(types: impl IntoIterator<Item = InstanceType>) -> Self {
        Catalog {
            types: types.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// The embedded us-east-1 catalog (parsed once).
    pub fn us_east_1() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let types: Vec<InstanceType> =
                serde_json::from_str(US_EAST_1_JSON).expect("the embedded catalog is valid JSON");
            Catalog::new(types.into_iter().map(InstanceType::with_offerings))
        })
    }

    /// One type by name.
    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.types.get(name)
    }

    /// Every type, by name.
    pub fn iter(&self) -> impl Iterator<Item = &InstanceType> {
        self.types.values()
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when there are no types.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_upstream_does() {
        let p = parse_name("m5d.large");
        assert_eq!(
            (
                p.family.as_str(),
                p.category.as_str(),
                p.generation,
                p.size.as_str()
            ),
            ("m5d", "m", Some(5), "large")
        );
        let p = parse_name("c7i-flex.2xlarge");
        assert_eq!(
            (p.family.as_str(), p.category.as_str(), p.generation),
            ("c7i-flex", "c", Some(7))
        );
        let p = parse_name("u-6tb1.56xlarge");
        assert_eq!((p.category.as_str(), p.generation), ("u", Some(1)));
        let p = parse_name("inf2.xlarge");
        assert_eq!((p.category.as_str(), p.generation), ("inf", Some(2)));
        let p = parse_name("x2iedn.metal");
        assert_eq!(
            (p.category.as_str(), p.generation, p.size.as_str()),
            ("x", Some(2), "metal")
        );
    }
}
