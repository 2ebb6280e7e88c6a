//! Builds the catalog from real data: moto's copy of `DescribeInstanceTypes`
//! (`moto/ec2/resources/instance_types.json.gz`) and per-AZ offerings
//! (`instance_type_offerings/availability-zone/<region>.json.gz`), and a table
//! of on-demand prices (`catalog/data/ec2-on-demand-prices-us-east-1.csv`,
//! from the project's shared data). Offerings, with modelled spot prices
//! ([`super::spot_price`]), are built from the stored zones when the catalog loads.
//!
//! Types are kept when they run Linux on amd64 or arm64, are offered in at
//! least one zone of the region, and have an on-demand price.

use super::{Device, InstanceType};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// Why the catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A source file is missing or unreadable.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A source file is not what was expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn read(path: &Path) -> Result<String, GenerateError> {
    let err = |source| GenerateError::Read {
        path: path.display().to_string(),
        source,
    };
    let bytes = std::fs::read(path).map_err(err)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .map_err(err)?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|e| GenerateError::Format {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

fn json(path: &Path) -> Result<Value, GenerateError> {
    serde_json::from_str(&read(path)?).map_err(|e| GenerateError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// On-demand prices from `instance_type,usd_per_hour` lines.
fn prices(path: &Path) -> Result<BTreeMap<String, f64>, GenerateError> {
    let text = read(path)?;
    let mut out = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || GenerateError::Format {
            path: path.display().to_string(),
            message: format!("line {}: expected `type,price`", i + 1),
        };
        let (name, price) = line.split_once(',').ok_or_else(bad)?;
        out.insert(
            name.trim().to_string(),
            price.trim().parse().map_err(|_| bad())?,
        );
    }
    Ok(out)
}

/// A label-safe lower-case name: `RTX PRO 4500` -> `rtx-pro-4500`.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn device(value: &Value, manufacturer_default: &str) -> Option<Device> {
    Some(Device {
        name: label_value(value["Name"].as_str()?),
        manufacturer: label_value(
            value["Manufacturer"]
                .as_str()
                .unwrap_or(manufacturer_default),
        ),
        count: value["Count"].as_u64()? as u32,
        memory_mib: value["MemoryInfo"]["SizeInMiB"].as_u64().unwrap_or(0),
        cores: None,
    })
}

/// The `kubernetes.io/arch` of a type supporting `archs` (EC2 names), if Linux nodes can use it.
pub fn kubernetes_architecture(archs: &[&str]) -> Option<&'static str> {
    if archs.contains(&"x86_64") {
        Some("amd64")
    } else if archs.contains(&"arm64") {
        Some("arm64")
    } else {
        None
    }
}

/// Converts one `DescribeInstanceTypes` entry, or `None` when the type is not for Linux on amd64/arm64.
fn instance_type(info: &Value, zones: &BTreeSet<String>, on_demand: f64) -> Option<InstanceType> {
    let name = info["InstanceType"].as_str()?.to_string();
    let archs: Vec<&str> = info["ProcessorInfo"]["SupportedArchitectures"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let architecture = kubernetes_architecture(&archs)?;
    let network = &info["NetworkInfo"];
    let bandwidth_gbps: f64 = network["NetworkCards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["BaselineBandwidthInGbps"].as_f64())
        .sum();
    let nvme = matches!(
        info["InstanceStorageInfo"]["NvmeSupport"].as_str(),
        Some("required" | "supported")
    );
    let accelerator = info["InferenceAcceleratorInfo"]["Accelerators"]
        .get(0)
        .and_then(|a| device(a, "aws"))
        .or_else(|| {
            info["NeuronInfo"]["NeuronDevices"]
                .get(0)
                .and_then(|a| device(a, "aws"))
        });
    // Neuron cores (upstream reads them from NeuronInfo, whichever field
    // named the accelerator).
    let accelerator = accelerator.map(|device| Device {
        cores: info["NeuronInfo"]["NeuronDevices"][0]["CoreInfo"]["Count"]
            .as_u64()
            .map(|c| c as u32),
        ..device
    });
    let spot = info["SupportedUsageClasses"]
        .as_array()
        .is_some_and(|c| c.iter().any(|u| u == "spot"));
    Some(InstanceType {
        architecture: architecture.into(),
        vcpu: info["VCpuInfo"]["DefaultVCpus"].as_u64()? as u32,
        memory_mib: info["MemoryInfo"]["SizeInMiB"].as_u64()?,
        cpu_manufacturer: info["ProcessorInfo"]["Manufacturer"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase(),
        cpu_clock_mhz: info["ProcessorInfo"]["SustainedClockSpeedInGhz"]
            .as_f64()
            .map(|ghz| (ghz * 1000.0).round() as u32),
        gpu: info["GpuInfo"]["Gpus"].get(0).and_then(|g| device(g, "")),
        accelerator,
        local_nvme_gb: if nvme {
            info["InstanceStorageInfo"]["TotalSizeInGB"]
                .as_u64()
                .unwrap_or(0)
        } else {
            0
        },
        network_bandwidth_mbps: (bandwidth_gbps * 1000.0).round() as u64,
        ebs_bandwidth_mbps: info["EbsInfo"]["EbsOptimizedInfo"]["MaximumBandwidthInMbps"]
            .as_u64()
            .unwrap_or(0),
        hypervisor: info["Hypervisor"].as_str().unwrap_or_default().to_string(),
        enis: network["MaximumNetworkInterfaces"].as_u64().unwrap_or(1) as u32,
        ipv4_per_eni: network["Ipv4AddressesPerInterface"].as_u64().unwrap_or(1) as u32,
        efas: network["EfaInfo"]["MaximumEfaInterfaces"]
            .as_u64()
            .unwrap_or(0) as u32,
        encryption_in_transit: network["EncryptionInTransitSupported"]
            .as_bool()
            .unwrap_or(false),
        bare_metal: info["BareMetal"].as_bool().unwrap_or(false),
        on_demand_price: on_demand,
        zones: zones.iter().cloned().collect(),
        spot,
        offerings: Vec::new(),
        name,
    })
}

/// Builds the catalog of `region` from moto's resources folder and a price table.
pub fn from_moto(
    moto_resources: &Path,
    region: &str,
    price_table: &Path,
) -> Result<Vec<InstanceType>, GenerateError> {
    let types = json(&moto_resources.join("instance_types.json.gz"))?;
    let offerings_path = moto_resources.join(format!(
        "instance_type_offerings/availability-zone/{region}.json.gz"
    ));
    let offerings = json(&offerings_path)?;
    let prices = prices(price_table)?;
    let mut zones: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for offering in offerings.as_array().ok_or_else(|| GenerateError::Format {
        path: offerings_path.display().to_string(),
        message: "expected a list of offerings".into(),
    })? {
        if let (Some(t), Some(z)) = (
            offering["InstanceType"].as_str(),
            offering["Location"].as_str(),
        ) {
            zones
                .entry(t.to_string())
                .or_default()
                .insert(z.to_string());
        }
    }
    let mut catalog: Vec<InstanceType> = types
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, info)| instance_type(info, zones.get(name)?, *prices.get(name)?))
        .collect();
    catalog.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(catalog)
}

/// The catalog as committed: a JSON array, one instance type per line.
pub fn to_json(types: &[InstanceType]) -> String {
    let lines: Vec<String> = types
        .iter()
        .map(|t| serde_json::to_string(t).expect("instance types serialize"))
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

/// moto's EC2 resources folder in the venv `scripts/dev-env` builds under the workspace.
pub fn dev_env_moto_resources(crate_dir: &Path) -> Option<std::path::PathBuf> {
    let lib = crate_dir
        .ancestors()
        .find(|d| d.join(".dev-env").exists())?
        .join(".dev-env/venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages/moto/ec2/resources"))
        .find(|p| p.join("instance_types.json.gz").exists())
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_names_become_label_values() {
        assert_eq!(super::label_value("RTX PRO 4500"), "rtx-pro-4500");
        assert_eq!(super::label_value("A100"), "a100");
        assert_eq!(super::label_value("Radeon Pro V520 "), "radeon-pro-v520");
    }
}
