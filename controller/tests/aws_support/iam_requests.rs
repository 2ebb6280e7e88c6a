//! The AWS requests the proxy saw, as IAM authorizes them: each action on
//! each resource it touches, with the request's tags (`aws:RequestTag/*`,
//! `aws:TagKeys`), the resources' tags (`aws:ResourceTag/*`, looked up in
//! moto or taken from the request that created them) and the region.
//! Actions this does not know how to map are returned by name: the caller
//! reports them as not evaluated.

use super::proxy::Recorded;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use test_support::iam::{IamRequest, request_tags, resource_tags};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

type Params = Vec<(String, String)>;

fn param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Values of `prefix.N` for N = 1, 2, ...
fn numbered<'a>(params: &'a Params, prefix: &str) -> Vec<&'a str> {
    (1..)
        .map_while(|i| param(params, &format!("{prefix}.{i}")))
        .collect()
}

/// The tags of the `TagSpecification.N` whose ResourceType is `resource_type`.
fn tag_spec(params: &Params, resource_type: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for i in 1.. {
        let Some(kind) = param(params, &format!("TagSpecification.{i}.ResourceType")) else {
            break;
        };
        if kind != resource_type {
            continue;
        }
        for j in 1.. {
            let Some(key) = param(params, &format!("TagSpecification.{i}.Tag.{j}.Key")) else {
                break;
            };
            let value =
                param(params, &format!("TagSpecification.{i}.Tag.{j}.Value")).unwrap_or_default();
            tags.insert(key.to_string(), value.to_string());
        }
    }
    tags
}

/// `Tags.member.N.Key/Value` (the IAM query API).
fn member_tags(params: &Params) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for i in 1.. {
        let Some(key) = param(params, &format!("Tags.member.{i}.Key")) else {
            break;
        };
        let value = param(params, &format!("Tags.member.{i}.Value")).unwrap_or_default();
        tags.insert(key.to_string(), value.to_string());
    }
    tags
}

fn request(action: &str, resource: String, context: BTreeMap<String, Value>) -> IamRequest {
    let mut context = context;
    context.insert("aws:RequestedRegion".into(), json!(REGION));
    IamRequest {
        action: action.to_string(),
        resource,
        context,
    }
}

fn ec2_arn(resource: &str) -> String {
    let account = if resource.starts_with("image/") {
        ""
    } else {
        ACCOUNT
    };
    format!("arn:aws:ec2:{REGION}:{account}:{resource}")
}

/// What the requests from index `from` on ask IAM, and the actions left
/// unmapped (earlier requests are read only for the tags of what they created).
pub async fn iam_requests(
    ec2: &aws_sdk_ec2::Client,
    node_role_arn: &str,
    seen: &[Recorded],
    from: usize,
) -> (Vec<IamRequest>, Vec<String>) {
    let mut out = Vec::new();
    let mut unmapped = Vec::new();
    // Tags of what the requests created, by name.
    let mut template_tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut profile_tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (index, Recorded { action, params, .. }) in seen.iter().enumerate() {
        if index < from {
            match action.as_str() {
                "CreateLaunchTemplate" => {
                    let name = param(params, "LaunchTemplateName").unwrap_or_default();
                    template_tags.insert(name.to_string(), tag_spec(params, "launch-template"));
                }
                "CreateInstanceProfile" => {
                    let name = param(params, "InstanceProfileName").unwrap_or_default();
                    profile_tags.insert(name.to_string(), member_tags(params));
                }
                _ => {}
            }
            continue;
        }
        match action.as_str() {
            "CreateLaunchTemplate" => {
                let tags = tag_spec(params, "launch-template");
                let name = param(params, "LaunchTemplateName").unwrap_or_default();
                template_tags.insert(name.to_string(), tags.clone());
                out.push(request(
                    "ec2:CreateLaunchTemplate",
                    ec2_arn("launch-template/*"),
                    request_tags(&tags),
                ));
                let mut tagging = request_tags(&tags);
                tagging.insert("ec2:CreateAction".into(), json!("CreateLaunchTemplate"));
                out.push(request(
                    "ec2:CreateTags",
                    ec2_arn("launch-template/*"),
                    tagging,
                ));
            }
            "CreateFleet" => {
                for kind in ["fleet", "instance", "volume"] {
                    let tags = tag_spec(params, kind);
                    out.push(request(
                        "ec2:CreateFleet",
                        ec2_arn(&format!("{kind}/*")),
                        request_tags(&tags),
                    ));
                    let mut tagging = request_tags(&tags);
                    tagging.insert("ec2:CreateAction".into(), json!("CreateFleet"));
                    out.push(request(
                        "ec2:CreateTags",
                        ec2_arn(&format!("{kind}/*")),
                        tagging,
                    ));
                }
                for i in 1.. {
                    let Some(name) = param(
                        params,
                        &format!(
                            "LaunchTemplateConfigs.{i}.LaunchTemplateSpecification.LaunchTemplateName"
                        ),
                    ) else {
                        break;
                    };
                    let tags = template_tags.get(name).cloned().unwrap_or_default();
                    out.push(request(
                        "ec2:CreateFleet",
                        ec2_arn(&format!("launch-template/{name}")),
                        resource_tags(&tags),
                    ));
                    for subnet in (1..).map_while(|j| {
                        param(
                            params,
                            &format!("LaunchTemplateConfigs.{i}.Overrides.{j}.SubnetId"),
                        )
                    }) {
                        out.push(request(
                            "ec2:CreateFleet",
                            ec2_arn(&format!("subnet/{subnet}")),
                            BTreeMap::new(),
                        ));
                    }
                    // The image the template names (IAM authorizes CreateFleet on
                    // no security-group resource, so the groups are not asked about).
                    if let Ok(versions) = ec2
                        .describe_launch_template_versions()
                        .launch_template_name(name)
                        .send()
                        .await
                    {
                        for data in versions
                            .launch_template_versions()
                            .iter()
                            .filter_map(|v| v.launch_template_data())
                        {
                            if let Some(image) = data.image_id() {
                                out.push(request(
                                    "ec2:CreateFleet",
                                    ec2_arn(&format!("image/{image}")),
                                    BTreeMap::new(),
                                ));
                            }
                        }
                    }
                }
                out.push(request(
                    "iam:PassRole",
                    node_role_arn.to_string(),
                    BTreeMap::from([(
                        "iam:PassedToService".to_string(),
                        json!("ec2.amazonaws.com"),
                    )]),
                ));
            }
            "CreateTags" => {
                // Tags on a running instance (the tagging controller).
                let tags: BTreeMap<String, String> = (1..)
                    .map_while(|i| {
                        let key = param(params, &format!("Tag.{i}.Key"))?;
                        let value = param(params, &format!("Tag.{i}.Value")).unwrap_or_default();
                        Some((key.to_string(), value.to_string()))
                    })
                    .collect();
                for id in numbered(params, "ResourceId") {
                    let mut context = request_tags(&tags);
                    context.extend(resource_tags(&instance_tags(ec2, id).await));
                    out.push(request(
                        "ec2:CreateTags",
                        ec2_arn(&format!("instance/{id}")),
                        context,
                    ));
                }
            }
            "TerminateInstances" => {
                for id in numbered(params, "InstanceId") {
                    let tags = instance_tags(ec2, id).await;
                    out.push(request(
                        "ec2:TerminateInstances",
                        ec2_arn(&format!("instance/{id}")),
                        resource_tags(&tags),
                    ));
                }
            }
            "DeleteLaunchTemplate" => {
                let name = param(params, "LaunchTemplateName").unwrap_or_default();
                let tags = template_tags.get(name).cloned().unwrap_or_default();
                out.push(request(
                    "ec2:DeleteLaunchTemplate",
                    ec2_arn(&format!("launch-template/{name}")),
                    resource_tags(&tags),
                ));
            }
            read if read.starts_with("Describe") && param(params, "Version").is_some() => {
                out.push(request(&format!("ec2:{read}"), "*".into(), BTreeMap::new()));
            }
            "CreateInstanceProfile" => {
                let name = param(params, "InstanceProfileName").unwrap_or_default();
                let tags = member_tags(params);
                profile_tags.insert(name.to_string(), tags.clone());
                out.push(request(
                    "iam:CreateInstanceProfile",
                    profile_arn(name),
                    request_tags(&tags),
                ));
            }
            "TagInstanceProfile" => {
                let name = param(params, "InstanceProfileName").unwrap_or_default();
                let tags = member_tags(params);
                let mut context = request_tags(&tags);
                context.extend(resource_tags(
                    &profile_tags.get(name).cloned().unwrap_or_default(),
                ));
                out.push(request(
                    "iam:TagInstanceProfile",
                    profile_arn(name),
                    context,
                ));
            }
            "AddRoleToInstanceProfile"
            | "RemoveRoleFromInstanceProfile"
            | "DeleteInstanceProfile"
            | "GetInstanceProfile" => {
                let name = param(params, "InstanceProfileName").unwrap_or_default();
                let tags = profile_tags.get(name).cloned().unwrap_or_default();
                out.push(request(
                    &format!("iam:{action}"),
                    profile_arn(name),
                    resource_tags(&tags),
                ));
            }
            "GetParameter" => {
                let name = param(params, "Name").unwrap_or_default();
                out.push(request(
                    "ssm:GetParameter",
                    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"),
                    BTreeMap::new(),
                ));
            }
            "GetProducts" => out.push(request("pricing:GetProducts", "*".into(), BTreeMap::new())),
            "ReceiveMessage" | "DeleteMessage" | "GetQueueUrl" => {
                let queue = param(params, "QueueUrl")
                    .and_then(|url| url.rsplit('/').next())
                    .or_else(|| param(params, "QueueName"))
                    .unwrap_or_default();
                out.push(request(
                    &format!("sqs:{action}"),
                    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
                    BTreeMap::new(),
                ));
            }
            other => unmapped.push(other.to_string()),
        }
    }
    (out, unmapped)
}

fn profile_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:instance-profile/{name}")
}

async fn instance_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> BTreeMap<String, String> {
    let Ok(out) = ec2.describe_instances().instance_ids(id).send().await else {
        return BTreeMap::new();
    };
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// The node role the tests' account launches with.
pub const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo";

/// Evaluates the requests the proxy saw from index `from` on against the
/// controller policy `karpenter-iam` ships for cluster `demo` (with the
/// interruption queue when `queue` is set); panics on any deny, naming it.
/// Returns the decisions and the actions left unmapped.
pub async fn assert_allowed(
    simulator: &std::path::Path,
    ec2: &aws_sdk_ec2::Client,
    seen: &[Recorded],
    from: usize,
    queue: bool,
) -> (Vec<test_support::iam::Decision>, Vec<String>) {
    let (requests, unmapped) = iam_requests(ec2, NODE_ROLE, seen, from).await;
    let mut policy =
        karpenter_iam::controller::ControllerPolicy::new("demo", REGION, ACCOUNT, NODE_ROLE);
    if queue {
        policy.interruption_queue_arn =
            Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:Karpenter-demo"));
    }
    // The tests publish AMI parameters in their account under their own
    // prefix (moto refuses /aws/service, where AWS's public ones live).
    policy.ssm_parameter_arns = vec![format!(
        "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{}/*",
        super::SSM_PREFIX
    )];
    let decisions = test_support::iam::evaluate(
        simulator,
        &format!("arn:aws:iam::{ACCOUNT}:role/KarpenterController-demo"),
        ACCOUNT,
        &karpenter_iam::controller::controller_policy(&policy),
        &requests,
    );
    let denied: Vec<_> = decisions.iter().filter(|d| d.result != "Allowed").collect();
    assert!(
        denied.is_empty(),
        "denied by the shipped policy: {denied:#?}"
    );
    (decisions, unmapped)
}
