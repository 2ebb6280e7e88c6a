//! The controller's AWS requests as IAM authorizes them: each action on
//! each resource it touches, with the request's tags (`aws:RequestTag/*`,
//! `aws:TagKeys`), the resources' tags (`aws:ResourceTag/*`, looked up in
//! moto or taken from the request that created them), the region, and what
//! IAM authorizes alongside (`iam:PassRole` for a fleet's instance profile,
//! `ec2:CreateTags` for tags on create). Actions this does not know how to
//! map are returned by name, so a caller can fail on them.
//!
//! The requests come from a recording proxy or from moto's own log
//! ([`crate::MotoServer::start_logging`]), as [`AwsCall`]s.

use crate::LoggedRequest;
use crate::iam::{IamRequest, request_tags, resource_tags};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// moto's account, in which the calls' ARNs are built.
pub const ACCOUNT: &str = "123456789012";
/// The region the tests' AWS clients use.
pub const REGION: &str = "us-east-1";

type Params = Vec<(String, String)>;

/// One AWS call: who signed it, the operation and its parameters.
#[derive(Debug, Clone)]
pub struct AwsCall {
    /// The access key id that signed it (tells one program from another).
    pub signer: String,
    /// The operation (a query API's `Action`, a JSON API's target, or the
    /// name of a REST operation this module knows).
    pub action: String,
    /// Form fields, and a JSON body's top-level strings.
    pub params: Params,
}

impl AwsCall {
    /// A query or JSON API call from its `Authorization` header, its
    /// `X-Amz-Target` (empty for query APIs) and its body.
    pub fn parse(authorization: &str, target: &str, body: &[u8]) -> AwsCall {
        let mut params: Params = form_urlencoded::parse(body).into_owned().collect();
        let action = target
            .rsplit('.')
            .next()
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .or_else(|| param(&params, "Action").map(str::to_string))
            .unwrap_or_default();
        if let Ok(Value::Object(fields)) = serde_json::from_slice(body) {
            params.extend(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))),
            );
        }
        let signer = authorization
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or_default()
            .to_string();
        AwsCall {
            signer,
            action,
            params,
        }
    }
}

impl From<&LoggedRequest> for AwsCall {
    fn from(r: &LoggedRequest) -> AwsCall {
        let mut call = AwsCall::parse("", &r.target, r.body.as_bytes());
        call.signer = r.key.clone();
        // EKS is a REST API: `GET /clusters/<name>` is DescribeCluster.
        let described = (r.service == "eks" && r.method == "GET")
            .then(|| r.path.strip_prefix("/clusters/"))
            .flatten()
            .filter(|name| !name.contains('/'));
        if let Some(name) = described {
            call.action = "DescribeCluster".into();
            call.params.push(("name".into(), name.to_string()));
        }
        call
    }
}

/// The first value of form field `key`.
pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Values of `prefix.N` for N = 1, 2, ...
pub fn numbered<'a>(params: &'a [(String, String)], prefix: &str) -> Vec<&'a str> {
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

/// What the calls from index `from` on ask IAM, and the actions left
/// unmapped (earlier calls are read only for what they created: the tags
/// of launch templates and instance profiles, a template's image). `ec2`
/// looks up instances' tags.
pub async fn controller_requests(
    ec2: &aws_sdk_ec2::Client,
    node_role_arn: &str,
    seen: &[AwsCall],
    from: usize,
) -> (Vec<IamRequest>, Vec<String>) {
    let mut out = Vec::new();
    let mut unmapped = Vec::new();
    // Tags of what the requests created, by name.
    let mut template_tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut profile_tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    // The image each launch template names, by template name.
    let mut template_images: BTreeMap<String, String> = BTreeMap::new();
    for (index, AwsCall { action, params, .. }) in seen.iter().enumerate() {
        if action == "CreateLaunchTemplate" {
            let name = param(params, "LaunchTemplateName").unwrap_or_default();
            if let Some(image) = param(params, "LaunchTemplateData.ImageId") {
                template_images.insert(name.to_string(), image.to_string());
            }
        }
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
                    if let Some(image) = template_images.get(name) {
                        out.push(request(
                            "ec2:CreateFleet",
                            ec2_arn(&format!("image/{image}")),
                            BTreeMap::new(),
                        ));
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
            "DescribeCluster" => {
                let name = param(params, "name").unwrap_or_default();
                out.push(request(
                    "eks:DescribeCluster",
                    format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}"),
                    BTreeMap::new(),
                ));
            }
            // Needs no permission.
            "GetCallerIdentity" => {}
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
