//! `karpenter_ec2nodeclass`: the whole `karpenter.k8s.aws/v1` EC2NodeClass
//! spec as nested blocks, validated at plan time, with what the controller
//! resolved (subnets, security groups, AMIs, instance profile) as computed
//! attributes.

use super::crd::{Kind, Problems};
use super::status::{self, StatusAttr};
use crate::cty::Type;
use crate::mapping::Field;
use crate::schema::{Nesting, Presence};
use karpenter_api::v1::EC2NodeClass;
use serde_json::Value as Json;

fn attr(tf: &'static str, json: &'static str, ty: Type, description: &'static str) -> Field {
    Field::Attr {
        tf,
        json,
        ty,
        presence: Presence::Optional,
        description,
    }
}

fn string(tf: &'static str, json: &'static str, description: &'static str) -> Field {
    attr(tf, json, Type::String, description)
}

fn string_map(tf: &'static str, json: &'static str, description: &'static str) -> Field {
    attr(tf, json, Type::Map(Box::new(Type::String)), description)
}

fn list(
    tf: &'static str,
    json: &'static str,
    description: &'static str,
    fields: Vec<Field>,
) -> Field {
    Field::Block {
        tf,
        json,
        nesting: Nesting::List,
        description,
        fields,
    }
}

fn single(
    tf: &'static str,
    json: &'static str,
    description: &'static str,
    fields: Vec<Field>,
) -> Field {
    Field::Block {
        tf,
        json,
        nesting: Nesting::Single,
        description,
        fields,
    }
}

fn defaulted(tf: &'static str, json: &'static str, ty: Type, description: &'static str) -> Field {
    Field::Attr {
        tf,
        json,
        ty,
        presence: Presence::OptionalComputed,
        description,
    }
}

/// The EC2NodeClass spec's fields.
pub fn fields() -> Vec<Field> {
    let tags = || {
        string_map(
            "tags",
            "tags",
            "Match resources carrying all these tags (`*` matches any value).",
        )
    };
    let id = |what| string("id", "id", what);
    vec![
        list(
            "subnet_selector_term",
            "subnetSelectorTerms",
            "Subnets to launch in: by tags or id.",
            vec![tags(), id("A subnet id.")],
        ),
        list(
            "security_group_selector_term",
            "securityGroupSelectorTerms",
            "Security groups: by tags, id or name.",
            vec![
                tags(),
                id("A security group id."),
                string("name", "name", "A security group name."),
            ],
        ),
        list(
            "capacity_reservation_selector_term",
            "capacityReservationSelectorTerms",
            "Capacity reservations to use: by tags, id, owner.",
            vec![
                tags(),
                id("A reservation id."),
                string("owner_id", "ownerID", "The owning account."),
            ],
        ),
        list(
            "ami_selector_term",
            "amiSelectorTerms",
            "AMIs: an alias (`al2023@latest`), or by tags, id, name, owner, SSM parameter.",
            vec![
                string(
                    "alias",
                    "alias",
                    "`family@version`: `al2023@latest`, `bottlerocket@v1.20.0`.",
                ),
                tags(),
                id("An AMI id."),
                string("name", "name", "An AMI name (wildcards allowed)."),
                string(
                    "owner",
                    "owner",
                    "Its owner: an account, `self` or `amazon`.",
                ),
                string(
                    "ssm_parameter",
                    "ssmParameter",
                    "An SSM parameter holding the AMI id.",
                ),
            ],
        ),
        string(
            "ami_family",
            "amiFamily",
            "`AL2023`, `AL2`, `Bottlerocket`, `Windows2019`, `Windows2022`, `Custom` (implied by an alias).",
        ),
        attr(
            "associate_public_ip_address",
            "associatePublicIPAddress",
            Type::Bool,
            "Give instances a public IPv4 address.",
        ),
        string(
            "user_data",
            "userData",
            "User data merged with (or, for `Custom`, instead of) Karpenter's.",
        ),
        string(
            "role",
            "role",
            "The node IAM role; Karpenter makes the instance profile.",
        ),
        string(
            "instance_profile",
            "instanceProfile",
            "An existing instance profile instead of `role`.",
        ),
        string_map(
            "tags",
            "tags",
            "Tags on every instance, volume and launch template.",
        ),
        single(
            "kubelet",
            "kubelet",
            "Kubelet settings.",
            vec![
                attr(
                    "cluster_dns",
                    "clusterDNS",
                    Type::List(Box::new(Type::String)),
                    "Cluster DNS server addresses.",
                ),
                attr(
                    "max_pods",
                    "maxPods",
                    Type::Number,
                    "Pods per node at most.",
                ),
                attr(
                    "pods_per_core",
                    "podsPerCore",
                    Type::Number,
                    "Pods per CPU core at most.",
                ),
                string_map(
                    "system_reserved",
                    "systemReserved",
                    "Resources reserved for the system.",
                ),
                string_map(
                    "kube_reserved",
                    "kubeReserved",
                    "Resources reserved for Kubernetes.",
                ),
                string_map("eviction_hard", "evictionHard", "Hard eviction thresholds."),
                string_map("eviction_soft", "evictionSoft", "Soft eviction thresholds."),
                string_map(
                    "eviction_soft_grace_period",
                    "evictionSoftGracePeriod",
                    "Grace period per soft threshold.",
                ),
                attr(
                    "eviction_max_pod_grace_period",
                    "evictionMaxPodGracePeriod",
                    Type::Number,
                    "Longest pod grace period on soft eviction (seconds).",
                ),
                attr(
                    "image_gc_high_threshold_percent",
                    "imageGCHighThresholdPercent",
                    Type::Number,
                    "Disk use that starts image garbage collection.",
                ),
                attr(
                    "image_gc_low_threshold_percent",
                    "imageGCLowThresholdPercent",
                    Type::Number,
                    "Disk use image garbage collection aims for.",
                ),
                attr(
                    "cpu_cfs_quota",
                    "cpuCFSQuota",
                    Type::Bool,
                    "Enforce CPU limits with CFS quota.",
                ),
            ],
        ),
        list(
            "block_device_mapping",
            "blockDeviceMappings",
            "EBS volumes of the instances.",
            vec![
                string("device_name", "deviceName", "The device (`/dev/xvda`)."),
                attr(
                    "root_volume",
                    "rootVolume",
                    Type::Bool,
                    "This is the root volume.",
                ),
                single(
                    "ebs",
                    "ebs",
                    "The EBS volume.",
                    vec![
                        attr(
                            "delete_on_termination",
                            "deleteOnTermination",
                            Type::Bool,
                            "Delete it with the instance.",
                        ),
                        attr("encrypted", "encrypted", Type::Bool, "Encrypt it."),
                        attr("iops", "iops", Type::Number, "Provisioned IOPS."),
                        string("kms_key_id", "kmsKeyID", "The KMS key encrypting it."),
                        string("snapshot_id", "snapshotID", "The snapshot it starts from."),
                        attr(
                            "throughput",
                            "throughput",
                            Type::Number,
                            "Throughput in MiB/s (gp3).",
                        ),
                        attr(
                            "volume_initialization_rate",
                            "volumeInitializationRate",
                            Type::Number,
                            "Snapshot restore rate in MiB/s.",
                        ),
                        string("volume_size", "volumeSize", "Its size (`20Gi`)."),
                        string(
                            "volume_type",
                            "volumeType",
                            "`gp3`, `gp2`, `io1`, `io2`, ...",
                        ),
                    ],
                ),
            ],
        ),
        string(
            "instance_store_policy",
            "instanceStorePolicy",
            "`RAID0`: use the instance stores as one volume.",
        ),
        attr(
            "detailed_monitoring",
            "detailedMonitoring",
            Type::Bool,
            "Detailed CloudWatch monitoring.",
        ),
        single(
            "metadata_options",
            "metadataOptions",
            "Instance metadata service settings (defaults: IMDSv2 only, hop limit 1).",
            vec![
                defaulted(
                    "http_endpoint",
                    "httpEndpoint",
                    Type::String,
                    "`enabled` or `disabled`.",
                ),
                defaulted(
                    "http_protocol_ipv6",
                    "httpProtocolIPv6",
                    Type::String,
                    "`enabled` or `disabled`.",
                ),
                defaulted(
                    "http_put_response_hop_limit",
                    "httpPutResponseHopLimit",
                    Type::Number,
                    "Hops a metadata response may travel.",
                ),
                defaulted(
                    "http_tokens",
                    "httpTokens",
                    Type::String,
                    "`required` (IMDSv2) or `optional`.",
                ),
            ],
        ),
        string(
            "context",
            "context",
            "The launch context (ODCR, for example).",
        ),
    ]
}

fn check(object: &Json) -> Result<Json, Problems> {
    let spec_error = |e: serde_json::Error| vec![(String::from("spec"), e.to_string())];
    let mut class: EC2NodeClass = serde_json::from_value(object.clone()).map_err(spec_error)?;
    karpenter_api::defaults::ec2nodeclass(&mut class);
    karpenter_api::validation::ec2nodeclass(&class).map_err(|errors| {
        errors
            .errors
            .into_iter()
            .map(|e| (e.path, e.rule))
            .collect::<Vec<_>>()
    })?;
    serde_json::to_value(&class).map_err(spec_error)
}

/// The selector lists upstream requires, even empty.
fn complete(spec: &mut Json) {
    if let Some(spec) = spec.as_object_mut() {
        for key in [
            "subnetSelectorTerms",
            "securityGroupSelectorTerms",
            "amiSelectorTerms",
        ] {
            spec.entry(key).or_insert_with(|| Json::Array(Vec::new()));
        }
    }
}

/// A list of ids.
fn ids() -> Type {
    Type::List(Box::new(Type::String))
}

/// The `karpenter_ec2nodeclass` resource.
pub fn kind() -> Kind {
    Kind {
        type_name: "karpenter_ec2nodeclass",
        api_version: "karpenter.k8s.aws/v1",
        kind: "EC2NodeClass",
        plural: "ec2nodeclasses",
        description: "A Karpenter EC2NodeClass (`karpenter.k8s.aws/v1`): how nodes are launched on EC2 (subnets, security groups, AMIs, role, kubelet, volumes).",
        fields,
        check,
        default_spec: karpenter_api::defaults::empty_ec2nodeclass_spec,
        complete,
        nodeclaim_label: None,
        status: || {
            vec![
                StatusAttr {
                    name: "status_subnets",
                    ty: ids(),
                    description: "Subnet ids the selectors resolved to.",
                    read: |s| status::list_of(s, "subnets", "id"),
                },
                StatusAttr {
                    name: "status_security_groups",
                    ty: ids(),
                    description: "Security group ids the selectors resolved to.",
                    read: |s| status::list_of(s, "securityGroups", "id"),
                },
                StatusAttr {
                    name: "status_amis",
                    ty: ids(),
                    description: "AMI ids the selectors resolved to.",
                    read: |s| status::list_of(s, "amis", "id"),
                },
                StatusAttr {
                    name: "status_instance_profile",
                    ty: Type::String,
                    description: "The instance profile nodes are launched with.",
                    read: |s| {
                        s["instanceProfile"]
                            .as_str()
                            .map_or(crate::cty::Value::Null, |p| {
                                crate::cty::Value::String(p.to_string())
                            })
                    },
                },
                status::conditions(),
            ]
        },
    }
}
