//! Booting an instance EC2 (or moto) launched: the agent's view of it, read
//! through the EC2 API the way IMDS would serve it on the instance.

use super::{ClusterIdentity, Machine, boot, launch_volumes};
use base64::Engine;
use k8s_openapi::api::core::v1::Node;
use karpenter_api::v1::EC2NodeClass;
use karpenter_controller::userdata::AmiFamily;

/// The instance facts the agent starts from.
#[derive(Debug, Clone)]
pub struct LaunchedInstance {
    /// `i-...`.
    pub id: String,
    /// Its instance type (`m5.large`).
    pub instance_type: String,
    /// Its availability zone.
    pub zone: String,
    /// Its region.
    pub region: String,
}

/// Boots `instance` as its AMI family's agent would: reads the user data EC2
/// holds for it (`DescribeInstanceAttribute userData`, what IMDS serves),
/// checks it against `cluster`, and returns the Node the kubelet would
/// register (volumes from `class`'s launch template; no EFA adapters).
/// The error says why the instance would not join.
pub async fn boot_instance(
    ec2: &aws_sdk_ec2::Client,
    instance: &LaunchedInstance,
    class: &EC2NodeClass,
    cluster: &ClusterIdentity,
) -> Result<Node, InstanceBootError> {
    let would_not_join = |why: String| InstanceBootError::WouldNotJoin(why);
    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(&instance.id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(|e| InstanceBootError::Ec2(format!("DescribeInstanceAttribute: {e:?}")))?;
    let encoded = attribute
        .user_data
        .and_then(|u| u.value)
        .ok_or_else(|| would_not_join("the instance has no user data".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| would_not_join(format!("user data is not base64: {e}")))?;
    let user_data = String::from_utf8(bytes).map_err(|e| would_not_join(e.to_string()))?;
    let instance_type = karpenter_controller::catalog::Catalog::us_east_1()
        .get(&instance.instance_type)
        .cloned()
        .ok_or_else(|| {
            would_not_join(format!("unknown instance type {}", instance.instance_type))
        })?;
    let machine = Machine {
        instance_id: instance.id.clone(),
        zone: instance.zone.clone(),
        region: instance.region.clone(),
        instance_type,
        volumes: launch_volumes(class),
        efa_interfaces: 0,
    };
    boot(AmiFamily::of(class), &user_data, cluster, &machine)
        .map_err(|e| would_not_join(e.to_string()))
}

/// Why a launched instance did not come up as a Node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceBootError {
    /// EC2 did not answer the user-data read; worth retrying.
    #[error("{0}")]
    Ec2(String),
    /// The instance would not join the cluster (its user data, its type):
    /// the launch must change.
    #[error("{0}")]
    WouldNotJoin(String),
}
