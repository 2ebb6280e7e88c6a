//! Cloud-provider calls, launch and termination failures, instance types.

use super::{Counters, FloatGauges, Gauges, Histograms, Registrar, duration_buckets};
use crate::catalog::{InstanceType, KubeletSettings};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

fn batch_size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// Cloud-provider metrics.
pub struct CloudMetrics {
    /// `karpenter_cloudprovider_duration_seconds{controller,method,provider}`.
    pub duration: Histograms,
    /// `karpenter_cloudprovider_errors_total{controller,method,provider,error}`.
    pub errors: Counters,
    /// `karpenter_cloudprovider_batcher_batch_size{batcher}`: requests merged into one call.
    pub batch_size: Histograms,
    /// `karpenter_cloudprovider_batcher_batch_time_seconds{batcher}`: how long a batch gathered.
    pub batch_time: Histograms,
    /// `karpenter_cloudprovider_instance_launch_failures_total{zone,zone_id,capacity_type,reason}`.
    pub launch_failures: Counters,
    /// `karpenter_cloudprovider_instance_termination_failures_total{zone,zone_id}`.
    pub termination_failures: Counters,
    /// `karpenter_cloudprovider_instance_type_cpu_cores{instance_type}`.
    pub instance_type_cpu: Gauges,
    /// `karpenter_cloudprovider_instance_type_memory_bytes{instance_type}`.
    pub instance_type_memory: Gauges,
    /// `karpenter_cloudprovider_instance_type_offering_available{instance_type,capacity_type,zone}`.
    pub offering_available: Gauges,
    /// `karpenter_cloudprovider_instance_type_offering_price_estimate{instance_type,capacity_type,zone}`.
    pub offering_price: FloatGauges,
}

impl CloudMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        let offering = &["instance_type", "capacity_type", "zone"];
        CloudMetrics {
            duration: r.histogram(
                "karpenter_cloudprovider_duration_seconds",
                "Duration of cloud provider method calls",
                &["controller", "method", "provider"],
                duration_buckets,
            ),
            errors: r.counter(
                "karpenter_cloudprovider_errors",
                "Total number of errors returned from CloudProvider calls",
                &["controller", "method", "provider", "error"],
            ),
            batch_size: r.histogram(
                "karpenter_cloudprovider_batcher_batch_size",
                "Size of the request batch per batcher",
                &["batcher"],
                batch_size_buckets,
            ),
            batch_time: r.histogram(
                "karpenter_cloudprovider_batcher_batch_time_seconds",
                "Duration of the batching window per batcher",
                &["batcher"],
                duration_buckets,
            ),
            launch_failures: r.counter(
                "karpenter_cloudprovider_instance_launch_failures",
                "Instance launches that failed, by zone, capacity type and reason",
                &["zone", "zone_id", "capacity_type", "reason"],
            ),
            termination_failures: r.counter(
                "karpenter_cloudprovider_instance_termination_failures",
                "Instance terminations that failed, by zone",
                &["zone", "zone_id"],
            ),
            instance_type_cpu: r.gauge(
                "karpenter_cloudprovider_instance_type_cpu_cores",
                "VCPUs cores for a given instance type",
                &["instance_type"],
            ),
            instance_type_memory: r.gauge(
                "karpenter_cloudprovider_instance_type_memory_bytes",
                "Memory, in bytes, for a given instance type",
                &["instance_type"],
            ),
            offering_available: r.gauge(
                "karpenter_cloudprovider_instance_type_offering_available",
                "Instance type offering availability, by instance type, capacity type and zone",
                offering,
            ),
            offering_price: r.float_gauge(
                "karpenter_cloudprovider_instance_type_offering_price_estimate",
                "Instance type offering estimated hourly price, by instance type, capacity type and zone",
                offering,
            ),
        }
    }
}

impl CloudMetrics {
    /// Publishes what the cloud offers: each instance type's CPU and memory
    /// (its capacity under `kubelet`: memory less the VM overhead, as the
    /// scheduler sees it) and each offering's availability and price.
    pub fn record_instance_types(&self, types: &[InstanceType], kubelet: &KubeletSettings) {
        for it in types {
            let name = vec![("instance_type", it.name.clone())];
            self.instance_type_cpu
                .get_or_create(&name)
                .set(i64::from(it.vcpu));
            let memory = it.capacity(kubelet).get("memory").map_or(0, |q| q.value());
            self.instance_type_memory.get_or_create(&name).set(memory);
            for offering in &it.offerings {
                let labels = vec![
                    ("instance_type", it.name.clone()),
                    ("capacity_type", offering.capacity_type.label().to_string()),
                    ("zone", offering.zone.clone()),
                ];
                self.offering_available
                    .get_or_create(&labels)
                    .set(i64::from(offering.available));
                self.offering_price
                    .get_or_create(&labels)
                    .set(offering.price);
            }
        }
    }
}
