//! Launching: one `CreateFleet` (type `instant`) per attempt, with overrides
//! for every allowed instance type in every zone the NodeClass has a subnet
//! in, cheapest first. Offerings EC2 reports without capacity are marked
//! unavailable for three minutes and the launch retries with what remains; a
//! launch template EC2 no longer has is recreated once.

use super::AwsCloudProvider;
use super::ami::AmiFamily;
use super::launch_template::{NetworkSettings, TemplateInput, default_block_devices};
use super::sdk::cloud_error;
use crate::catalog::{CapacityType, InstanceType, KubeletSettings, Offering};
use crate::cloud::offerings::{instance_tags, launch_choices, offering_name};
use crate::cloud::{CloudError, Instance};
use crate::userdata::{NodeBootstrap, render};
use aws_sdk_ec2::types::{
    CreateFleetError, DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
    FleetOnDemandAllocationStrategy, FleetType, OnDemandOptionsRequest, ResourceType,
    SpotAllocationStrategy, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::{AmiStatus, EC2NodeClass, NodeClaim};
use std::collections::BTreeMap;

/// Error codes that mean "no capacity for this offering now" (upstream's list).
const UNFULFILLABLE: &[&str] = &[
    "InsufficientInstanceCapacity",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "UnfulfillableCapacity",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
];

/// Error codes that mean the launch template is gone.
const TEMPLATE_MISSING: &[&str] = &[
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
];

/// At most this many overrides per request (upstream caps instance types at 60).
const MAX_OVERRIDES: usize = 60;

/// What a resolved NodeClass provides a launch.
struct Resolved<'a> {
    subnets: BTreeMap<&'a str, &'a str>,
    security_groups: Vec<String>,
    amis: Vec<(&'a AmiStatus, Requirements)>,
    instance_profile: String,
}

fn resolved(class: &EC2NodeClass) -> Result<Resolved<'_>, CloudError> {
    let name = class.metadata.name.as_deref().unwrap_or_default();
    let missing = |what: &str| {
        CloudError::NodeClassNotReady(format!("EC2NodeClass {name} has no resolved {what}"))
    };
    let status = class.status.as_ref().ok_or_else(|| missing("status"))?;
    let mut subnets = BTreeMap::new();
    // Status lists the roomiest subnet of a zone first: keep that one.
    for s in status.subnets.iter().flatten() {
        subnets.entry(s.zone.as_str()).or_insert(s.id.as_str());
    }
    let security_groups: Vec<String> = status
        .security_groups
        .iter()
        .flatten()
        .map(|g| g.id.clone())
        .collect();
    let amis = status
        .amis
        .iter()
        .flatten()
        .filter(|a| {
            a.deprecated != Some(true)
                || status
                    .amis
                    .iter()
                    .flatten()
                    .all(|b| b.deprecated == Some(true))
        })
        .filter_map(|a| {
            let mut all = Requirements::default();
            for r in &a.requirements {
                all.add(karpenter_api::requirements::Requirement::from_node_selector(r).ok()?);
            }
            Some((a, all))
        })
        .collect::<Vec<_>>();
    if subnets.is_empty() {
        return Err(missing("subnets"));
    }
    if security_groups.is_empty() {
        return Err(missing("security groups"));
    }
    if amis.is_empty() {
        return Err(missing("AMIs"));
    }
    let instance_profile = status
        .instance_profile
        .clone()
        .ok_or_else(|| missing("instance profile"))?;
    Ok(Resolved {
        subnets,
        security_groups,
        amis,
        instance_profile,
    })
}

/// The NodeClass's metadata options with upstream's defaults where unset
/// (IMDSv2 required, hop limit 1), so a NodeClass that skipped the API
/// server's defaulting still gets a locked-down instance metadata service.
fn metadata_options(class: &EC2NodeClass) -> karpenter_api::v1::MetadataOptions {
    use karpenter_api::defaults as d;
    let set = class.spec.metadata_options.clone().unwrap_or_default();
    karpenter_api::v1::MetadataOptions {
        http_endpoint: set.http_endpoint.or_else(|| Some(d::HTTP_ENDPOINT.into())),
        http_protocol_ipv6: set
            .http_protocol_ipv6
            .or_else(|| Some(d::HTTP_PROTOCOL_IPV6.into())),
        http_put_response_hop_limit: set
            .http_put_response_hop_limit
            .or(Some(d::HTTP_PUT_RESPONSE_HOP_LIMIT)),
        http_tokens: set.http_tokens.or_else(|| Some(d::HTTP_TOKENS.into())),
    }
}

/// One launch template of a fleet request: its AMI, its name, and the
/// overrides that AMI can boot.
struct TemplateConfig<'a> {
    image_id: String,
    max_pods: i64,
    /// EFA interfaces the template attaches (upstream groups by this too).
    efas: u32,
    name: String,
    overrides: Vec<(&'a InstanceType, &'a Offering)>,
}

/// A launch template's own tags: the NodeClass's and the claim's NodePool
/// (upstream's, and what `karpenter-iam`'s launch statements require).
fn template_tags(class: &EC2NodeClass, claim: &NodeClaim) -> BTreeMap<String, String> {
    let mut tags = class.spec.tags.clone().unwrap_or_default();
    if let Some(pool) = claim
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(karpenter_api::labels::NODEPOOL))
    {
        tags.insert(karpenter_api::labels::NODEPOOL.into(), pool.clone());
    }
    tags
}

/// The fleet request's idempotency token: the same for the same claim and
/// request, so an SDK retry after a lost response (a timeout after EC2
/// acted) gets EC2's first answer instead of a second instance; a fallback
/// to other offerings is another request and another token.
fn client_token(
    claim: &NodeClaim,
    capacity_type: CapacityType,
    configs: &[TemplateConfig<'_>],
) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let identity = claim
        .metadata
        .uid
        .as_deref()
        .or(claim.metadata.name.as_deref())
        .unwrap_or_default();
    hasher.update(identity.as_bytes());
    hasher.update(capacity_type.label().as_bytes());
    for config in configs {
        hasher.update(config.name.as_bytes());
        for (t, o) in &config.overrides {
            hasher.update(t.name.as_bytes());
            hasher.update(o.zone.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .take(32)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What one fleet request reported.
enum Outcome {
    Launched(String, CreateFleetInstanceLaunch),
    NoCapacity(Vec<String>),
    TemplateMissing(Vec<String>),
}

/// The launched instance's id and the override EC2 used.
struct CreateFleetInstanceLaunch {
    instance_type: String,
    zone: String,
    capacity_type: CapacityType,
    image_id: String,
}

impl AwsCloudProvider {
    pub(super) async fn launch(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Instance, CloudError> {
        let resolved = resolved(class)?;
        let types = self.offered_types(class).await?;
        let choices = launch_choices(claim, types.iter())?;
        let kubelet = KubeletSettings::for_class_with(class, self.settings.overheads);
        let mut tried = Vec::new();
        let mut recreated = false;
        loop {
            let available: Vec<&(&InstanceType, &Offering)> = choices
                .iter()
                .filter(|(t, o)| {
                    resolved.subnets.contains_key(o.zone.as_str())
                        && self
                            .unavailable
                            .is_available(&t.name, &o.zone, o.capacity_type)
                })
                .collect();
            let Some(capacity_type) = available.iter().map(|(_, o)| o.capacity_type).min() else {
                return Err(CloudError::InsufficientCapacity { tried });
            };
            let batch: Vec<(&InstanceType, &Offering)> = available
                .into_iter()
                .filter(|(_, o)| o.capacity_type == capacity_type)
                .take(MAX_OVERRIDES)
                .map(|(t, o)| (*t, *o))
                .collect();
            match self
                .create_fleet(claim, class, &resolved, &batch, capacity_type)
                .await?
            {
                Outcome::Launched(id, launched) => {
                    let t = types.iter().find(|t| t.name == launched.instance_type);
                    let (capacity, allocatable) = t
                        .map(|t| {
                            let efas = crate::cloud::efa_interfaces(t, claim);
                            crate::cloud::node_resources(t, &kubelet, efas)
                        })
                        .unwrap_or_default();
                    return Ok(Instance {
                        provider_id: format!("aws:///{}/{id}", launched.zone),
                        id,
                        capacity,
                        allocatable,
                        instance_type: launched.instance_type,
                        zone: launched.zone,
                        capacity_type: launched.capacity_type,
                        image_id: launched.image_id,
                        tags: instance_tags(
                            &self.settings.cluster.name,
                            claim,
                            class.spec.tags.as_ref(),
                        ),
                    });
                }
                Outcome::NoCapacity(offerings) => {
                    tried.extend(offerings);
                    // Guard against errors naming offerings we did not ask for: stop
                    // rather than ask again for the same ones.
                    if batch.iter().all(|(t, o)| {
                        self.unavailable
                            .is_available(&t.name, &o.zone, o.capacity_type)
                    }) {
                        return Err(CloudError::InsufficientCapacity { tried });
                    }
                }
                Outcome::TemplateMissing(names) if !recreated => {
                    recreated = true;
                    for name in names {
                        self.forget_template(&name);
                    }
                }
                Outcome::TemplateMissing(names) => {
                    return Err(CloudError::Api {
                        operation: "CreateFleet",
                        code: "InvalidLaunchTemplateName.NotFoundException".into(),
                        message: format!(
                            "launch templates {} are missing after being recreated",
                            names.join(", ")
                        ),
                    });
                }
            }
        }
    }

    /// One `CreateFleet` for `batch` (all of one capacity type).
    async fn create_fleet(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
        resolved: &Resolved<'_>,
        batch: &[(&InstanceType, &Offering)],
        capacity_type: CapacityType,
    ) -> Result<Outcome, CloudError> {
        let family = AmiFamily::of(class);
        let kubelet = KubeletSettings::for_class_with(class, self.settings.overheads);
        // User data differs by the pods a type admits (upstream: one launch
        // template per max-pods value), so render it once per value.
        let mut user_data_by_pods: BTreeMap<i64, String> = BTreeMap::new();
        // One launch template config per (AMI, max pods), with the overrides its image can boot.
        let mut configs: Vec<TemplateConfig> = Vec::new();
        for (t, o) in batch {
            let type_labels = t.labels();
            let Some((ami, _)) = resolved
                .amis
                .iter()
                .find(|(_, reqs)| reqs.matches(&type_labels))
            else {
                continue;
            };
            let max_pods = t.max_pods(&kubelet);
            let efas = crate::cloud::efa_interfaces(t, claim);
            match configs
                .iter_mut()
                .find(|c| c.image_id == ami.id && c.max_pods == max_pods && c.efas == efas)
            {
                Some(config) => config.overrides.push((t, o)),
                None => {
                    let user_data = match user_data_by_pods.get(&max_pods) {
                        Some(text) => text.clone(),
                        None => {
                            let node = NodeBootstrap::for_claim(
                                claim,
                                class,
                                capacity_type.label(),
                                max_pods,
                            );
                            let text = render(
                                family,
                                &self.settings.cluster,
                                &node,
                                class.spec.user_data.as_deref(),
                            )
                            .map_err(|e| CloudError::NodeClassNotReady(e.to_string()))?;
                            user_data_by_pods.insert(max_pods, text.clone());
                            text
                        }
                    };
                    let input = TemplateInput {
                        node_class: class.metadata.name.clone().unwrap_or_default(),
                        image_id: ami.id.clone(),
                        instance_profile: resolved.instance_profile.clone(),
                        security_groups: resolved.security_groups.clone(),
                        user_data,
                        block_devices: class
                            .spec
                            .block_device_mappings
                            .clone()
                            .unwrap_or_else(|| default_block_devices(family)),
                        metadata: metadata_options(class),
                        detailed_monitoring: class.spec.detailed_monitoring.unwrap_or(false),
                        associate_public_ip: class.spec.associate_public_ip_address,
                        network: NetworkSettings::of(&class.spec, efas),
                        // The NodePool's tag too: the controller policy only lets
                        // CreateLaunchTemplate and CreateFleet use templates that carry it.
                        tags: template_tags(class, claim),
                    };
                    let name = self.ensure_template(&input).await?;
                    configs.push(TemplateConfig {
                        image_id: ami.id.clone(),
                        max_pods,
                        efas,
                        name,
                        overrides: vec![(t, o)],
                    });
                }
            }
        }
        if configs.is_empty() {
            return Err(CloudError::NoCompatibleOffering(format!(
                "no AMI of EC2NodeClass {} serves the instance types NodeClaim {} allows",
                class.metadata.name.as_deref().unwrap_or_default(),
                claim.metadata.name.as_deref().unwrap_or_default()
            )));
        }
        let mut request = self
            .clients
            .ec2
            .create_fleet()
            .r#type(FleetType::Instant)
            .target_capacity_specification(
                TargetCapacitySpecificationRequest::builder()
                    .total_target_capacity(1)
                    .default_target_capacity_type(match capacity_type {
                        CapacityType::Spot => DefaultTargetCapacityType::Spot,
                        _ => DefaultTargetCapacityType::OnDemand,
                    })
                    .build(),
            )
            .spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            )
            .on_demand_options(
                OnDemandOptionsRequest::builder()
                    .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                    .build(),
            );
        for TemplateConfig {
            name, overrides, ..
        } in &configs
        {
            let mut config = FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_name(name)
                        .version("$Latest")
                        .build(),
                );
            for (t, o) in overrides {
                config = config.overrides(
                    FleetLaunchTemplateOverridesRequest::builder()
                        .instance_type(aws_sdk_ec2::types::InstanceType::from(t.name.as_str()))
                        .subnet_id(resolved.subnets[o.zone.as_str()])
                        .availability_zone(&o.zone)
                        .build(),
                );
            }
            request = request.launch_template_configs(config.build());
        }
        let tags: Vec<Tag> =
            instance_tags(&self.settings.cluster.name, claim, class.spec.tags.as_ref())
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
        for resource in [
            ResourceType::Instance,
            ResourceType::Volume,
            ResourceType::Fleet,
        ] {
            request = request.tag_specifications(
                TagSpecification::builder()
                    .resource_type(resource)
                    .set_tags(Some(tags.clone()))
                    .build(),
            );
        }
        request = request.client_token(client_token(claim, capacity_type, &configs));
        let template_names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) if super::sdk::error_code(&e).is_some_and(|c| TEMPLATE_MISSING.contains(&c)) => {
                return Ok(Outcome::TemplateMissing(template_names));
            }
            Err(e) => return Err(cloud_error("CreateFleet", e)),
        };
        let image_of = |template: Option<&str>| {
            configs
                .iter()
                .find(|c| Some(c.name.as_str()) == template)
                .map(|c| c.image_id.clone())
                .unwrap_or_default()
        };
        if let Some(launched) = output
            .instances
            .iter()
            .flatten()
            .find(|i| i.instance_ids.as_ref().is_some_and(|ids| !ids.is_empty()))
        {
            let overrides = launched.launch_template_and_overrides.as_ref();
            let template = overrides
                .and_then(|o| o.launch_template_specification.as_ref())
                .and_then(|s| s.launch_template_name.as_deref());
            let over = overrides.and_then(|o| o.overrides.as_ref());
            let instance_type = launched
                .instance_type
                .as_ref()
                .map(|t| t.as_str().to_string())
                .or_else(|| {
                    over.and_then(|o| o.instance_type.as_ref())
                        .map(|t| t.as_str().to_string())
                })
                .unwrap_or_default();
            let zone = over
                .and_then(|o| o.availability_zone.clone())
                .or_else(|| {
                    over.and_then(|o| o.subnet_id.as_deref())
                        .and_then(|s| resolved.subnets.iter().find(|(_, id)| **id == s))
                        .map(|(z, _)| z.to_string())
                })
                .unwrap_or_default();
            let capacity_type = match launched.lifecycle.as_ref().map(|l| l.as_str()) {
                Some("spot") => CapacityType::Spot,
                Some("on-demand") => CapacityType::OnDemand,
                _ => capacity_type,
            };
            let errors = output.errors.as_deref().unwrap_or_default();
            self.mark_unfulfillable(errors, resolved);
            let id = launched
                .instance_ids
                .as_ref()
                .and_then(|ids| ids.first())
                .cloned()
                .unwrap_or_default();
            return Ok(Outcome::Launched(
                id,
                CreateFleetInstanceLaunch {
                    instance_type,
                    zone,
                    capacity_type,
                    image_id: image_of(template),
                },
            ));
        }
        let errors = output.errors.unwrap_or_default();
        if errors.iter().any(|e| {
            e.error_code
                .as_deref()
                .is_some_and(|c| TEMPLATE_MISSING.contains(&c))
        }) {
            return Ok(Outcome::TemplateMissing(template_names));
        }
        let marked = self.mark_unfulfillable(&errors, resolved);
        if marked.is_empty() {
            // Not a capacity problem: report EC2's own words (unauthorised, bad parameter, ...).
            let first = errors.first();
            let code = first
                .and_then(|e| e.error_code.clone())
                .unwrap_or_else(|| "NoInstances".into());
            let message = first
                .and_then(|e| e.error_message.clone())
                .unwrap_or_else(|| "CreateFleet launched nothing and reported no error".into());
            return Err(if code == "UnauthorizedOperation" {
                CloudError::Unauthorized(format!("CreateFleet: {code}: {message}"))
            } else {
                CloudError::Api {
                    operation: "CreateFleet",
                    code,
                    message,
                }
            });
        }
        // Offerings the request asked for that EC2 did not report are not known to be short.
        Ok(Outcome::NoCapacity(marked))
    }

    /// Marks every offering an error reports without capacity; returns their names in order.
    fn mark_unfulfillable(
        &self,
        errors: &[CreateFleetError],
        resolved: &Resolved<'_>,
    ) -> Vec<String> {
        let mut marked = Vec::new();
        for e in errors {
            if !e
                .error_code
                .as_deref()
                .is_some_and(|c| UNFULFILLABLE.contains(&c))
            {
                continue;
            }
            let over = e
                .launch_template_and_overrides
                .as_ref()
                .and_then(|o| o.overrides.as_ref());
            let Some(instance_type) = over
                .and_then(|o| o.instance_type.as_ref())
                .map(|t| t.as_str().to_string())
            else {
                continue;
            };
            let zone = over.and_then(|o| o.availability_zone.clone()).or_else(|| {
                over.and_then(|o| o.subnet_id.as_deref())
                    .and_then(|s| resolved.subnets.iter().find(|(_, id)| **id == s))
                    .map(|(z, _)| z.to_string())
            });
            let Some(zone) = zone else { continue };
            let capacity_type = match e.lifecycle.as_ref().map(|l| l.as_str()) {
                Some("spot") => CapacityType::Spot,
                _ => CapacityType::OnDemand,
            };
            self.unavailable.mark(&instance_type, &zone, capacity_type);
            marked.push(offering_name(&instance_type, &zone, capacity_type));
        }
        marked
    }
}
