//! The EC2 cloud provider on the official AWS SDK.
//!
//! - [`nodeclass`]: EC2NodeClass selector terms to subnets, security groups,
//!   AMIs and an instance profile (`status` and conditions);
//! - [`instance_types`]: types, zones and prices (cached);
//! - [`launch_template`]: what an instance boots with (user data from [`crate::userdata`]);
//! - [`fleet`]: `CreateFleet` and its errors (insufficient capacity falls back);
//! - [`instances`]: get, list, delete and garbage collection by cluster tags.
//!
//! Tested against a moto server, with a fault-injection proxy for what moto
//! cannot do (fleet errors, throttling, denied calls): `controller/tests/aws_*.rs`.

pub mod ami;
pub mod cluster;
mod fleet;
mod instance_profile;
mod instance_types;
mod instances;
pub mod launch_template;
mod nodeclass;
pub mod sdk;

pub use instance_types::parse_price_list_item;
pub use sdk::AwsClients;

use super::offerings::UnavailableOfferings;
use super::{CloudError, CloudProvider, Instance};
use crate::catalog::{CapacityType, InstanceType};
use crate::userdata::ClusterInfo;
use instance_types::{Cached, PriceBook};
use karpenter_api::v1::{EC2NodeClass, EC2NodeClassStatus, NodeClaim, NodePool};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// How the provider talks to the cluster's AWS account.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Cluster name, tags and user data use it.
    pub cluster: ClusterInfo,
    /// AWS region.
    pub region: String,
    /// Kubernetes version of the control plane (`1.33`), for AMI aliases.
    pub kubernetes_version: String,
    /// Where the public AMI parameters live (`/aws/service`; tests seed their own).
    pub ssm_prefix: String,
    /// How long instance types and prices are reused before being fetched again.
    pub catalog_refresh: Duration,
    /// Upstream's `ISOLATED_VPC`: AWS services without a VPC endpoint (the
    /// Pricing API) cannot be reached, so on-demand prices come from the
    /// embedded table.
    pub isolated_vpc: bool,
    /// `VM_MEMORY_OVERHEAD_PERCENT` and `RESERVED_ENIS`, for the capacity
    /// and max pods of what is launched.
    pub overheads: crate::catalog::NodeOverheads,
}

impl AwsSettings {
    /// Settings with upstream's defaults: `/aws/service`, prices refreshed
    /// every 12 hours.
    pub fn new(cluster: ClusterInfo, region: &str, kubernetes_version: &str) -> Self {
        AwsSettings {
            cluster,
            region: region.to_string(),
            kubernetes_version: kubernetes_version.to_string(),
            ssm_prefix: "/aws/service".into(),
            catalog_refresh: Duration::from_secs(12 * 3600),
            isolated_vpc: false,
            overheads: Default::default(),
        }
    }
}

/// EC2 behind [`CloudProvider`].
pub struct AwsCloudProvider {
    clients: AwsClients,
    settings: AwsSettings,
    unavailable: UnavailableOfferings,
    price_book: Cached<PriceBook>,
    templates: Mutex<HashSet<String>>,
}

impl AwsCloudProvider {
    /// A provider using `clients` for the cluster in `settings`.
    pub fn new(clients: AwsClients, settings: AwsSettings) -> Self {
        AwsCloudProvider {
            clients,
            settings,
            unavailable: UnavailableOfferings::default(),
            price_book: Default::default(),
            templates: Mutex::new(HashSet::new()),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// Deletes the instance profile Karpenter manages for `class` (when the
    /// NodeClass is deleted); a profile the user named is left alone.
    pub async fn delete_instance_profile(&self, class: &EC2NodeClass) -> Result<(), CloudError> {
        instance_profile::delete(
            &self.clients.iam,
            &self.settings.cluster.name,
            &self.settings.region,
            class,
        )
        .await
    }
}

impl CloudProvider for AwsCloudProvider {
    async fn create(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Instance, CloudError> {
        self.launch(claim, class).await
    }

    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.get_instance(provider_id).await
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.list_instances().await
    }

    async fn delete(&self, provider_id: &str) -> Result<(), CloudError> {
        self.terminate(provider_id).await
    }

    async fn tag(
        &self,
        provider_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.tag_instance(provider_id, tags).await
    }

    async fn instance_types(
        &self,
        pool: &NodePool,
        class: &EC2NodeClass,
    ) -> Result<Vec<InstanceType>, CloudError> {
        let requirements = karpenter_api::requirements::Requirements::from_api(
            &pool.spec.template.spec.requirements,
        )
        .map_err(|e| CloudError::Invalid(format!("NodePool: {e}")))?;
        let mut types = self.offered_types(class).await?;
        types.retain(|t| super::offerings::type_matches(t, &requirements));
        Ok(types)
    }

    async fn is_drifted(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Option<String>, CloudError> {
        self.drift(claim, class).await
    }

    fn mark_unavailable(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.unavailable.mark(instance_type, zone, capacity_type);
    }

    async fn resolve_node_class(&self, class: &EC2NodeClass) -> EC2NodeClassStatus {
        self.resolve(class).await
    }

    async fn finalize_node_class(&self, class: &EC2NodeClass) -> Result<(), CloudError> {
        let name = class.metadata.name.as_deref().unwrap_or_default();
        self.delete_launch_templates(Some(name)).await?;
        self.delete_instance_profile(class).await
    }
}
