//! Launch templates: one per distinct (NodeClass, AMI, user data, block
//! devices, metadata options, network settings), named by a hash of exactly
//! that input so every launch that needs the same template reuses it.

use super::AwsCloudProvider;
use super::ami::AmiFamily;
use super::sdk::cloud_error;
use crate::cloud::CloudError;
use crate::cloud::offerings::{EKS_CLUSTER_NAME_TAG, cluster_tag};
use aws_sdk_ec2::types::{
    ConnectionTrackingSpecificationRequest, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceMetadataProtocolIpv6,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplatesMonitoringRequest,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};
use base64::Engine;
use karpenter_api::labels;
use karpenter_api::quantity::Quantity;
use karpenter_api::v1::{
    BlockDevice, BlockDeviceMapping, ConnectionTracking, MetadataOptions, NetworkInterface,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Prefix of every launch template Karpenter creates.
pub const NAME_PREFIX: &str = "karpenter.k8s.aws/";

/// The tag naming the cluster on launch templates (upstream's key).
pub const CLUSTER_TAG: &str = "karpenter.k8s.aws/cluster";

/// Everything a launch template holds.
#[derive(Debug, Clone, Serialize)]
pub(super) struct TemplateInput {
    /// The NodeClass it serves.
    pub node_class: String,
    /// The AMI.
    pub image_id: String,
    /// Instance profile name.
    pub instance_profile: String,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// User data, plain text (encoded when sent).
    pub user_data: String,
    /// Block devices.
    pub block_devices: Vec<BlockDeviceMapping>,
    /// Instance metadata service options.
    pub metadata: MetadataOptions,
    /// Detailed CloudWatch monitoring.
    pub detailed_monitoring: bool,
    /// Public IP on the primary interface, when the NodeClass says.
    pub associate_public_ip: Option<bool>,
    /// The NodeClass's network interfaces, IP prefixes and connection tracking.
    pub network: NetworkSettings,
    /// The NodeClass's tags (the template and its launches carry them).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// How the instance's network interfaces are spelled out.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct NetworkSettings {
    /// `spec.networkInterfaces`: the interfaces to attach (the primary one only when empty).
    pub interfaces: Vec<NetworkInterface>,
    /// `spec.ipPrefixCount`: /28 prefixes on the primary interface.
    pub ip_prefix_count: Option<i32>,
    /// `spec.connectionTracking`: on every interface that carries IP traffic.
    pub connection_tracking: Option<ConnectionTracking>,
    /// EFA interfaces to attach when the NodeClass names no interfaces (a
    /// NodeClaim asking for `vpc.amazonaws.com/efa`): one per network card.
    pub efas: u32,
}

impl NetworkSettings {
    /// The network settings of a NodeClass spec, with `efas` EFA
    /// interfaces (ignored when the spec names its interfaces, as upstream
    /// does).
    pub fn of(spec: &karpenter_api::v1::EC2NodeClassSpec, efas: u32) -> Self {
        let interfaces = spec.network_interfaces.clone().unwrap_or_default();
        NetworkSettings {
            efas: if interfaces.is_empty() { efas } else { 0 },
            interfaces,
            ip_prefix_count: spec.ip_prefix_count,
            connection_tracking: spec.connection_tracking.clone(),
        }
    }

    /// Whether the default (security groups on the instance, the subnet's
    /// public IP rule) will do, or the interfaces must be spelled out.
    fn is_default(&self) -> bool {
        self.interfaces.is_empty()
            && self.efas == 0
            && self.ip_prefix_count.is_none()
            && self.connection_tracking.is_none()
    }
}

impl TemplateInput {
    /// `karpenter.k8s.aws/<hash of the input>`.
    pub fn name(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{NAME_PREFIX}{hex}")
    }
}

/// The block devices a family's AMIs expect when the NodeClass names none:
/// a 20 GiB encrypted gp3 root; Bottlerocket adds a 4 GiB OS volume; Custom
/// keeps the AMI's own mappings.
pub fn default_block_devices(family: AmiFamily) -> Vec<BlockDeviceMapping> {
    let volume = |device: &str, size: &str, root: bool| BlockDeviceMapping {
        device_name: Some(device.to_string()),
        ebs: Some(BlockDevice {
            encrypted: Some(true),
            volume_size: Some(size.to_string()),
            volume_type: Some("gp3".into()),
            delete_on_termination: Some(true),
            ..Default::default()
        }),
        root_volume: Some(root),
    };
    match family {
        AmiFamily::Al2023 | AmiFamily::Al2 => vec![volume("/dev/xvda", "20Gi", true)],
        AmiFamily::Bottlerocket => vec![
            volume("/dev/xvda", "4Gi", false),
            volume("/dev/xvdb", "20Gi", true),
        ],
        AmiFamily::Custom => Vec::new(),
    }
}

/// Whole GiB of a `volumeSize` quantity (`20Gi`, `100G`), rounded up.
fn gibibytes(size: &str) -> Result<i32, CloudError> {
    let q: Quantity = size.parse().map_err(|e| {
        CloudError::Invalid(format!(
            "spec.blockDeviceMappings[].ebs.volumeSize {size:?}: {e}"
        ))
    })?;
    let gib = (q.as_f64() / f64::from(1u32 << 30)).ceil();
    if !(1.0..=65536.0).contains(&gib) {
        return Err(CloudError::Invalid(format!(
            "spec.blockDeviceMappings[].ebs.volumeSize {size:?}: must be between 1Gi and 64Ti"
        )));
    }
    Ok(gib as i32)
}

fn block_device(
    mapping: &BlockDeviceMapping,
) -> Result<LaunchTemplateBlockDeviceMappingRequest, CloudError> {
    let ebs = match &mapping.ebs {
        None => None,
        Some(e) => Some(
            LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_encrypted(e.encrypted)
                .set_delete_on_termination(e.delete_on_termination)
                .set_iops(e.iops.and_then(|v| i32::try_from(v).ok()))
                .set_throughput(e.throughput.and_then(|v| i32::try_from(v).ok()))
                .set_kms_key_id(e.kms_key_id.clone())
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_size(e.volume_size.as_deref().map(gibibytes).transpose()?)
                .set_volume_type(e.volume_type.as_deref().map(VolumeType::from))
                .build(),
        ),
    };
    Ok(LaunchTemplateBlockDeviceMappingRequest::builder()
        .set_device_name(mapping.device_name.clone())
        .set_ebs(ebs)
        .build())
}

/// The interfaces a template attaches: the NodeClass's, or the primary one
/// alone. Interfaces carrying IP traffic get the security groups and the
/// connection tracking; the primary one the public IP rule and the prefixes;
/// an `efa-only` interface none of these (EC2 refuses them there).
fn network_interfaces(
    input: &TemplateInput,
) -> Vec<LaunchTemplateInstanceNetworkInterfaceSpecificationRequest> {
    let primary = NetworkInterface {
        network_card_index: 0,
        device_index: 0,
        interface_type: "interface".into(),
    };
    // EFA: one `efa` interface per network card, the first card's primary
    // (device 0), the others device 1 (upstream's launch template).
    let efa: Vec<NetworkInterface> = (0..input.network.efas as i32)
        .map(|card| NetworkInterface {
            network_card_index: card,
            device_index: if card == 0 { 0 } else { 1 },
            interface_type: "efa".into(),
        })
        .collect();
    let interfaces = if !input.network.interfaces.is_empty() {
        input.network.interfaces.as_slice()
    } else if !efa.is_empty() {
        efa.as_slice()
    } else {
        std::slice::from_ref(&primary)
    };
    let tracking = input.network.connection_tracking.as_ref().map(|t| {
        ConnectionTrackingSpecificationRequest::builder()
            .set_tcp_established_timeout(t.tcp_established_timeout)
            .set_udp_stream_timeout(t.udp_stream_timeout)
            .set_udp_timeout(t.udp_timeout)
            .build()
    });
    interfaces
        .iter()
        .map(|ni| {
            let is_primary = ni.network_card_index == 0 && ni.device_index == 0;
            let builder = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .network_card_index(ni.network_card_index)
                .device_index(ni.device_index);
            if ni.interface_type == "efa-only" {
                return builder.interface_type("efa-only").build();
            }
            let builder = if ni.interface_type == "efa" {
                builder.interface_type("efa")
            } else {
                builder
            };
            let builder = builder
                .set_groups(Some(input.security_groups.clone()))
                .set_connection_tracking_specification(tracking.clone());
            if is_primary {
                builder
                    .set_associate_public_ip_address(input.associate_public_ip)
                    .set_ipv4_prefix_count(input.network.ip_prefix_count)
                    .build()
            } else {
                builder.build()
            }
        })
        .collect()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl AwsCloudProvider {
    /// The name of a launch template holding `input`, created when it does not
    /// exist yet (known templates are remembered; [`Self::forget_template`]
    /// drops one that turned out to be gone).
    pub(super) async fn ensure_template(
        &self,
        input: &TemplateInput,
    ) -> Result<String, CloudError> {
        let name = input.name();
        if self
            .templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&name)
        {
            return Ok(name);
        }
        let metadata = &input.metadata;
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(&input.image_id)
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(&input.instance_profile)
                    .build(),
            )
            .user_data(base64::engine::general_purpose::STANDARD.encode(&input.user_data))
            .monitoring(
                LaunchTemplatesMonitoringRequest::builder()
                    .enabled(input.detailed_monitoring)
                    .build(),
            )
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .set_http_endpoint(
                        metadata
                            .http_endpoint
                            .as_deref()
                            .map(LaunchTemplateInstanceMetadataEndpointState::from),
                    )
                    .set_http_protocol_ipv6(
                        metadata
                            .http_protocol_ipv6
                            .as_deref()
                            .map(LaunchTemplateInstanceMetadataProtocolIpv6::from),
                    )
                    .set_http_put_response_hop_limit(
                        metadata
                            .http_put_response_hop_limit
                            .and_then(|h| i32::try_from(h).ok()),
                    )
                    .set_http_tokens(
                        metadata
                            .http_tokens
                            .as_deref()
                            .map(LaunchTemplateHttpTokensState::from),
                    )
                    .build(),
            );
        for mapping in &input.block_devices {
            data = data.block_device_mappings(block_device(mapping)?);
        }
        // Security groups go on the interfaces when they are spelled out, else on the instance.
        data = if input.associate_public_ip.is_none() && input.network.is_default() {
            data.set_security_group_ids(Some(input.security_groups.clone()))
        } else {
            data.set_network_interfaces(Some(network_interfaces(input)))
        };
        let cluster = &self.settings.cluster.name;
        let mut tags: Vec<Tag> = input.tags.iter().map(|(k, v)| tag(k, v)).collect();
        tags.extend([
            tag(CLUSTER_TAG, cluster),
            tag(&cluster_tag(cluster), "owned"),
            tag(EKS_CLUSTER_NAME_TAG, cluster),
            tag(labels::EC2NODECLASS, &input.node_class),
        ]);
        let created = self
            .clients
            .ec2
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(data.build())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(tags))
                    .build(),
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another replica (or an earlier run) made it: same name, same content.
            Err(e)
                if super::sdk::error_code(&e)
                    == Some("InvalidLaunchTemplateName.AlreadyExistsException") => {}
            Err(e) => return Err(cloud_error("CreateLaunchTemplate", e)),
        }
        self.templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone());
        Ok(name)
    }

    /// Forgets a template that EC2 says does not exist, so the next
    /// [`Self::ensure_template`] recreates it.
    pub(super) fn forget_template(&self, name: &str) {
        self.templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Deletes the cluster's launch templates (tagged [`CLUSTER_TAG`]) made
    /// for `node_class` (every class's with `None`), as upstream does when an
    /// EC2NodeClass goes; returns their names.
    pub async fn delete_launch_templates(
        &self,
        node_class: Option<&str>,
    ) -> Result<Vec<String>, CloudError> {
        let mut names = Vec::new();
        let mut describe = self.clients.ec2.describe_launch_templates().filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{CLUSTER_TAG}"))
                .values(&self.settings.cluster.name)
                .build(),
        );
        if let Some(class) = node_class {
            describe = describe.filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(format!("tag:{}", labels::EC2NODECLASS))
                    .values(class)
                    .build(),
            );
        }
        let mut pages = describe.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| cloud_error("DescribeLaunchTemplates", e))?;
            names.extend(
                page.launch_templates
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| t.launch_template_name),
            );
        }
        for name in &names {
            let deleted = self
                .clients
                .ec2
                .delete_launch_template()
                .launch_template_name(name)
                .send()
                .await;
            match deleted {
                Ok(_) => {}
                // Gone already (another replica, an earlier attempt).
                Err(e)
                    if super::sdk::error_code(&e)
                        == Some("InvalidLaunchTemplateName.NotFoundException") => {}
                Err(e) => return Err(cloud_error("DeleteLaunchTemplate", e)),
            }
            self.forget_template(name);
        }
        Ok(names)
    }
}
