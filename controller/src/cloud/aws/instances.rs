//! Instances by id and by cluster tag: get, list, terminate, drift, and
//! garbage collection of instances no NodeClaim owns.

use super::AwsCloudProvider;
use super::sdk::{cloud_error, error_code};
use crate::catalog::{CapacityType, KubeletSettings};
use crate::cloud::offerings::cluster_tag;
use crate::cloud::{CloudError, Instance, claim_provider_id, parse_provider_id};
use aws_sdk_ec2::types::Filter;
use karpenter_api::labels;
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use std::collections::BTreeMap;

/// States in which an instance still exists for Karpenter.
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

fn live(instance: &aws_sdk_ec2::types::Instance) -> bool {
    instance
        .state
        .as_ref()
        .and_then(|s| s.name.as_ref())
        .is_some_and(|n| LIVE_STATES.contains(&n.as_str()))
}

impl AwsCloudProvider {
    /// Converts an EC2 instance, with capacity from the price book's type.
    async fn instance(&self, raw: &aws_sdk_ec2::types::Instance) -> Result<Instance, CloudError> {
        let id = raw.instance_id.clone().unwrap_or_default();
        let zone = raw
            .placement
            .as_ref()
            .and_then(|p| p.availability_zone.clone())
            .unwrap_or_default();
        let instance_type = raw
            .instance_type
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        let tags: BTreeMap<String, String> = raw
            .tags
            .iter()
            .flatten()
            .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
            .collect();
        let capacity_type = if raw.capacity_reservation_id.is_some() {
            CapacityType::Reserved
        } else if raw
            .instance_lifecycle
            .as_ref()
            .is_some_and(|l| l.as_str() == "spot")
        {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        };
        // Capacity needs the NodeClass's kubelet settings; without it, defaults.
        let kubelet = KubeletSettings::default();
        let book = self.price_book().await?;
        let t = book.types.iter().find(|t| t.name == instance_type);
        // EFA counts when the instance has adapters attached (upstream reads
        // the same from the instance's interfaces).
        let efas = raw
            .network_interfaces()
            .iter()
            .filter(|ni| ni.interface_type() == Some("efa"))
            .count() as u32;
        let (capacity, allocatable) = t
            .map(|t| crate::cloud::node_resources(t, &kubelet, efas))
            .unwrap_or_default();
        Ok(Instance {
            provider_id: format!("aws:///{zone}/{id}"),
            id,
            capacity,
            allocatable,
            instance_type,
            zone,
            capacity_type,
            image_id: raw.image_id.clone().unwrap_or_default(),
            tags,
        })
    }

    /// The live EC2 instance behind `id`, or `NotFound`.
    async fn describe(&self, id: &str) -> Result<aws_sdk_ec2::types::Instance, CloudError> {
        let out = match self
            .clients
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                return Err(CloudError::NotFound(id.to_string()));
            }
            Err(e) => return Err(cloud_error("DescribeInstances", e)),
        };
        out.reservations
            .into_iter()
            .flatten()
            .flat_map(|r| r.instances.unwrap_or_default())
            .find(live)
            .ok_or_else(|| CloudError::NotFound(id.to_string()))
    }

    pub(super) async fn get_instance(&self, provider_id: &str) -> Result<Instance, CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        let raw = self.describe(id).await?;
        self.instance(&raw).await
    }

    /// Live instances tagged `kubernetes.io/cluster/<cluster>=owned` and carrying a NodePool tag.
    async fn cluster_instances(&self) -> Result<Vec<aws_sdk_ec2::types::Instance>, CloudError> {
        let filter = |name: String, values: &[&str]| {
            Filter::builder()
                .name(name)
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build()
        };
        let mut pages = self
            .clients
            .ec2
            .describe_instances()
            .filters(filter(
                format!("tag:{}", cluster_tag(&self.settings.cluster.name)),
                &["owned"],
            ))
            .filters(filter("tag-key".into(), &[labels::NODEPOOL]))
            .filters(filter("instance-state-name".into(), LIVE_STATES))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("DescribeInstances", e))?;
            out.extend(
                page.reservations
                    .into_iter()
                    .flatten()
                    .flat_map(|r| r.instances.unwrap_or_default())
                    .filter(live),
            );
        }
        Ok(out)
    }

    pub(super) async fn list_instances(&self) -> Result<Vec<Instance>, CloudError> {
        let mut out = Vec::new();
        for raw in self.cluster_instances().await? {
            out.push(self.instance(&raw).await?);
        }
        Ok(out)
    }

    pub(super) async fn terminate(&self, provider_id: &str) -> Result<(), CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        // Terminated instances linger in EC2's answers for an hour: they count as gone.
        self.describe(id).await?;
        match self
            .clients
            .ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                Err(CloudError::NotFound(id.to_string()))
            }
            Err(e) => Err(cloud_error("TerminateInstances", e)),
        }
    }

    /// `CreateTags` on a running instance (the policy's
    /// `AllowScopedResourceTagging` allows `Name`, `karpenter.sh/nodeclaim`
    /// and `eks:eks-cluster-name` on the cluster's instances).
    pub(super) async fn tag_instance(
        &self,
        provider_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
        match self
            .clients
            .ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(tags.collect()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                Err(CloudError::NotFound(id.to_string()))
            }
            Err(e) => Err(cloud_error("CreateTags", e)),
        }
    }

    /// Why the claim's instance no longer matches `class`: its AMI, subnet or
    /// security groups are no longer what the NodeClass resolves.
    pub(super) async fn drift(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Option<String>, CloudError> {
        let provider_id = claim_provider_id(claim)?;
        let (_, id) = parse_provider_id(provider_id)?;
        let raw = self.describe(id).await?;
        let Some(status) = class.status.as_ref() else {
            return Ok(None);
        };
        let image = raw.image_id.as_deref().unwrap_or_default();
        if let Some(amis) = &status.amis
            && !amis.iter().any(|a| a.id == image)
        {
            return Ok(Some(format!(
                "AMIDrift: the instance runs {image}, the EC2NodeClass resolves {}",
                amis.iter()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let subnet = raw.subnet_id.as_deref().unwrap_or_default();
        if let Some(subnets) = &status.subnets
            && !subnets.iter().any(|s| s.id == subnet)
        {
            return Ok(Some(format!(
                "SubnetDrift: subnet {subnet} is no longer selected"
            )));
        }
        let mut running: Vec<&str> = raw
            .security_groups
            .iter()
            .flatten()
            .filter_map(|g| g.group_id.as_deref())
            .collect();
        let mut wanted: Vec<&str> = status
            .security_groups
            .iter()
            .flatten()
            .map(|g| g.id.as_str())
            .collect();
        running.sort_unstable();
        wanted.sort_unstable();
        if !wanted.is_empty() && running != wanted {
            return Ok(Some(format!(
                "SecurityGroupDrift: the instance has [{}], the EC2NodeClass selects [{}]",
                running.join(", "),
                wanted.join(", ")
            )));
        }
        Ok(None)
    }
}
