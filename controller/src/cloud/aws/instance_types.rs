//! Instance types and prices from EC2: `DescribeInstanceTypes` and
//! `DescribeInstanceTypeOfferings` (cached: the full list is megabytes),
//! on-demand prices from the Pricing API with the embedded us-east-1 table as
//! fallback, spot prices from `DescribeSpotPriceHistory` (latest per type and zone).

use super::AwsCloudProvider;
use super::sdk::cloud_error;
use crate::catalog::generate::{kubernetes_architecture, label_value};
use crate::catalog::{Catalog, Device, InstanceType};
use crate::cloud::CloudError;
use aws_sdk_ec2::types::{InstanceTypeInfo, LocationType};
use karpenter_api::v1::EC2NodeClass;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

/// Types and prices fetched at one time.
#[derive(Debug, Default)]
pub(super) struct PriceBook {
    /// Every Linux type of the region with its zones and on-demand price (offerings empty).
    pub types: Vec<InstanceType>,
    /// Latest spot price per (type, zone).
    pub spot: HashMap<(String, String), f64>,
}

/// A value fetched at a time, refreshed when older than the provider's refresh period.
pub(super) type Cached<T> = tokio::sync::Mutex<Option<(Instant, Arc<T>)>>;

fn device(
    name: Option<&str>,
    manufacturer: Option<&str>,
    count: Option<i32>,
    memory_mib: Option<i32>,
) -> Option<Device> {
    Some(Device {
        name: label_value(name?),
        manufacturer: label_value(manufacturer.unwrap_or("aws")),
        count: u32::try_from(count?).ok()?,
        memory_mib: memory_mib.and_then(|m| u64::try_from(m).ok()).unwrap_or(0),
        cores: None,
    })
}

/// Converts one `DescribeInstanceTypes` entry, or `None` when Linux nodes cannot use it.
fn from_sdk(
    info: &InstanceTypeInfo,
    zones: &BTreeSet<String>,
    on_demand_price: f64,
) -> Option<InstanceType> {
    let name = info.instance_type.as_ref()?.as_str().to_string();
    let archs: Vec<&str> = info
        .processor_info
        .as_ref()?
        .supported_architectures
        .iter()
        .flatten()
        .map(|a| a.as_str())
        .collect();
    let processor = info.processor_info.as_ref();
    let network = info.network_info.as_ref();
    let storage = info.instance_storage_info.as_ref();
    let nvme = storage
        .and_then(|s| s.nvme_support.as_ref())
        .is_some_and(|n| matches!(n.as_str(), "required" | "supported"));
    let gpu = info
        .gpu_info
        .as_ref()
        .and_then(|g| g.gpus.as_ref()?.first())
        .and_then(|g| {
            device(
                g.name.as_deref(),
                Some(g.manufacturer.as_deref().unwrap_or("")),
                g.count,
                g.memory_info.as_ref().and_then(|m| m.size_in_mib),
            )
        });
    let accelerator = info
        .inference_accelerator_info
        .as_ref()
        .and_then(|a| a.accelerators.as_ref()?.first())
        .and_then(|a| {
            device(
                a.name.as_deref(),
                a.manufacturer.as_deref(),
                a.count,
                a.memory_info.as_ref().and_then(|m| m.size_in_mib),
            )
        })
        .or_else(|| {
            info.neuron_info
                .as_ref()
                .and_then(|n| n.neuron_devices.as_ref()?.first())
                .and_then(|d| {
                    device(
                        d.name.as_deref(),
                        Some("aws"),
                        d.count,
                        d.memory_info.as_ref().and_then(|m| m.size_in_mib),
                    )
                })
        });
    // Neuron cores (upstream reads them from NeuronInfo, whichever field
    // named the accelerator).
    let neuron_cores = info
        .neuron_info
        .as_ref()
        .and_then(|n| {
            n.neuron_devices
                .as_ref()?
                .first()?
                .core_info
                .as_ref()?
                .count
        })
        .and_then(|c| u32::try_from(c).ok());
    let accelerator = accelerator.map(|device| Device {
        cores: neuron_cores,
        ..device
    });
    let bandwidth_gbps: f64 = network
        .and_then(|n| n.network_cards.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.baseline_bandwidth_in_gbps)
        .sum();
    Some(InstanceType {
        architecture: kubernetes_architecture(&archs)?.to_string(),
        vcpu: u32::try_from(info.v_cpu_info.as_ref()?.default_v_cpus?).ok()?,
        memory_mib: u64::try_from(info.memory_info.as_ref()?.size_in_mib?).ok()?,
        cpu_manufacturer: processor
            .and_then(|p| p.manufacturer.as_deref())
            .unwrap_or_default()
            .to_lowercase(),
        cpu_clock_mhz: processor
            .and_then(|p| p.sustained_clock_speed_in_ghz)
            .map(|ghz| (ghz * 1000.0).round() as u32),
        gpu,
        accelerator,
        local_nvme_gb: if nvme {
            storage
                .and_then(|s| s.total_size_in_gb)
                .and_then(|g| u64::try_from(g).ok())
                .unwrap_or(0)
        } else {
            0
        },
        network_bandwidth_mbps: (bandwidth_gbps * 1000.0).round() as u64,
        ebs_bandwidth_mbps: info
            .ebs_info
            .as_ref()
            .and_then(|e| e.ebs_optimized_info.as_ref())
            .and_then(|e| e.maximum_bandwidth_in_mbps)
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0),
        hypervisor: info
            .hypervisor
            .as_ref()
            .map(|h| h.as_str().to_string())
            .unwrap_or_default(),
        enis: network
            .and_then(|n| n.maximum_network_interfaces)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
        ipv4_per_eni: network
            .and_then(|n| n.ipv4_addresses_per_interface)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
        efas: network
            .and_then(|n| n.efa_info.as_ref())
            .and_then(|e| e.maximum_efa_interfaces)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        encryption_in_transit: network
            .and_then(|n| n.encryption_in_transit_supported)
            .unwrap_or(false),
        bare_metal: info.bare_metal.unwrap_or(false),
        on_demand_price,
        zones: zones.iter().cloned().collect(),
        spot: info
            .supported_usage_classes
            .iter()
            .flatten()
            .any(|c| c.as_str() == "spot"),
        offerings: Vec::new(),
        name,
    })
}

/// Parses one Pricing API price-list document into (instance type, USD per hour).
pub fn parse_price_list_item(document: &str) -> Option<(String, f64)> {
    let doc: serde_json::Value = serde_json::from_str(document).ok()?;
    let name = doc["product"]["attributes"]["instanceType"]
        .as_str()?
        .to_string();
    let price = doc["terms"]["OnDemand"]
        .as_object()?
        .values()
        .filter_map(|term| term["priceDimensions"].as_object())
        .flat_map(|dims| dims.values())
        .filter_map(|d| d["pricePerUnit"]["USD"].as_str()?.parse::<f64>().ok())
        .find(|p| *p > 0.0)?;
    Some((name, price))
}

impl AwsCloudProvider {
    /// The instance types and offerings `class` can launch: types in the zones
    /// of its subnets, on-demand and (where sold) spot, at current prices.
    pub(super) async fn offered_types(
        &self,
        class: &EC2NodeClass,
    ) -> Result<Vec<InstanceType>, CloudError> {
        let zones: BTreeSet<&str> = class
            .status
            .as_ref()
            .and_then(|s| s.subnets.as_deref())
            .into_iter()
            .flatten()
            .map(|s| s.zone.as_str())
            .collect();
        if zones.is_empty() {
            return Err(CloudError::NodeClassNotReady(format!(
                "EC2NodeClass {} has no resolved subnets (status.subnets is empty)",
                class.metadata.name.as_deref().unwrap_or_default()
            )));
        }
        let book = self.price_book().await?;
        let mut types: Vec<InstanceType> = book
            .types
            .iter()
            .filter(|t| t.zones.iter().any(|z| zones.contains(z.as_str())))
            .map(|t| {
                let mut t = t.clone();
                t.zones.retain(|z| zones.contains(z.as_str()));
                // A zone without a published spot price has no spot offering.
                let name = t.name.clone();
                t.with_spot_prices(|zone| book.spot.get(&(name.clone(), zone.to_string())).copied())
            })
            .collect();
        self.unavailable.apply(&mut types);
        Ok(types)
    }

    /// Types and prices, fetched once per refresh period.
    pub(super) async fn price_book(&self) -> Result<Arc<PriceBook>, CloudError> {
        let mut cached = self.price_book.lock().await;
        if let Some((at, book)) = cached.as_ref()
            && at.elapsed() < self.settings.catalog_refresh
        {
            return Ok(book.clone());
        }
        let book = Arc::new(self.fetch_price_book().await?);
        *cached = Some((Instant::now(), book.clone()));
        Ok(book)
    }

    async fn fetch_price_book(&self) -> Result<PriceBook, CloudError> {
        let ec2 = &self.clients.ec2;
        let mut zones: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut pages = ec2
            .describe_instance_type_offerings()
            .location_type(LocationType::AvailabilityZone)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("DescribeInstanceTypeOfferings", e))?;
            for o in page.instance_type_offerings.unwrap_or_default() {
                if let (Some(t), Some(zone)) = (o.instance_type, o.location) {
                    zones
                        .entry(t.as_str().to_string())
                        .or_default()
                        .insert(zone);
                }
            }
        }
        let prices = self.on_demand_prices().await;
        let mut types = Vec::new();
        let mut pages = ec2.describe_instance_types().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("DescribeInstanceTypes", e))?;
            for info in page.instance_types.unwrap_or_default() {
                let Some(name) = info.instance_type.as_ref().map(|t| t.as_str().to_string()) else {
                    continue;
                };
                // Types without a zone or a price cannot be launched or compared.
                let (Some(zones), Some(price)) = (zones.get(&name), prices.get(&name)) else {
                    continue;
                };
                types.extend(from_sdk(&info, zones, *price));
            }
        }
        types.sort_by(|a, b| a.name.cmp(&b.name));
        let spot = self.spot_prices().await?;
        Ok(PriceBook { types, spot })
    }

    /// On-demand prices from the Pricing API; in an isolated VPC, or when it
    /// cannot be reached or answers nothing, the embedded us-east-1 table.
    async fn on_demand_prices(&self) -> HashMap<String, f64> {
        let fetched = if self.settings.isolated_vpc {
            Ok(HashMap::new())
        } else {
            self.fetch_on_demand_prices().await
        };
        match fetched {
            Ok(prices) if !prices.is_empty() => prices,
            outcome => {
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "no prices returned".to_string(),
                };
                tracing::warn!(region = %self.settings.region, error = %why,
                    "Pricing API unavailable: using the embedded us-east-1 on-demand prices");
                Catalog::us_east_1()
                    .iter()
                    .map(|t| (t.name.clone(), t.on_demand_price))
                    .collect()
            }
        }
    }

    async fn fetch_on_demand_prices(&self) -> Result<HashMap<String, f64>, CloudError> {
        use aws_sdk_pricing::types::{Filter, FilterType};
        let term = |field: &str, value: &str| {
            Filter::builder()
                .r#type(FilterType::TermMatch)
                .field(field)
                .value(value)
                .build()
                .map_err(|e| CloudError::Invalid(e.to_string()))
        };
        let mut pages = self
            .clients
            .pricing
            .get_products()
            .service_code("AmazonEC2")
            .filters(term("regionCode", &self.settings.region)?)
            .filters(term("operatingSystem", "Linux")?)
            .filters(term("tenancy", "Shared")?)
            .filters(term("preInstalledSw", "NA")?)
            .filters(term("capacitystatus", "Used")?)
            .filters(term("licenseModel", "No License required")?)
            .into_paginator()
            .send();
        let mut prices = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("GetProducts", e))?;
            prices.extend(
                page.price_list
                    .iter()
                    .flatten()
                    .filter_map(|d| parse_price_list_item(d)),
            );
        }
        Ok(prices)
    }

    async fn spot_prices(&self) -> Result<HashMap<(String, String), f64>, CloudError> {
        let mut latest: HashMap<(String, String), (aws_smithy_types::DateTime, f64)> =
            HashMap::new();
        let mut pages = self
            .clients
            .ec2
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .start_time(aws_smithy_types::DateTime::from(
                std::time::SystemTime::now(),
            ))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("DescribeSpotPriceHistory", e))?;
            for p in page.spot_price_history.unwrap_or_default() {
                let (Some(t), Some(zone), Some(price), Some(at)) = (
                    p.instance_type,
                    p.availability_zone,
                    p.spot_price.and_then(|s| s.parse::<f64>().ok()),
                    p.timestamp,
                ) else {
                    continue;
                };
                let key = (t.as_str().to_string(), zone);
                if latest
                    .get(&key)
                    .is_none_or(|(seen, _)| at.secs() >= seen.secs())
                {
                    latest.insert(key, (at, price));
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|(k, (_, price))| (k, price))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_price_list_item;

    #[test]
    fn price_list_documents() {
        let doc = r#"{"product": {"attributes": {"instanceType": "m5.large", "operatingSystem": "Linux"}},
            "terms": {"OnDemand": {"X.JRTCKXETXF": {"priceDimensions": {"X.JRTCKXETXF.6YS6EN2CT7":
            {"unit": "Hrs", "pricePerUnit": {"USD": "0.0960000000"}}}}}}}"#;
        assert_eq!(
            parse_price_list_item(doc),
            Some(("m5.large".to_string(), 0.096))
        );
        assert_eq!(parse_price_list_item("{}"), None);
        assert_eq!(parse_price_list_item("not json"), None);
    }
}
