//! Every AWS request the `karpenter-bootstrap` binary makes, evaluated
//! against the least-privilege policy shipped for whoever runs it
//! (`karpenter-bootstrap policy`, from `karpenter_iam::bootstrap`),
//! conditions included, by `@cloud-copilot/iam-simulate`. moto answers the requests but authorizes
//! nothing, so this is the only place a missing permission shows before a
//! real account refuses it.
//!
//! The binary runs as a user runs it: `status`, `plan`, `apply` (Pod
//! Identity, Session Manager, an instance profile, discovery tags), `apply`
//! again, `apply` after changes by hand (the update calls), then `destroy --force-terminate` with a NodePool's instance and an
//! instance profile the controller made still there; and the IRSA variant
//! (the OIDC provider) on a second cluster. moto logs each request with the
//! access key that signed it; the bootstrap signs with its own key, so what
//! the test arranges is not evaluated (but its tags are known).
//!
//! Each request becomes what IAM authorizes: the action on each resource
//! (ARNs as IAM builds them), the request's tags (`aws:RequestTag/*`,
//! `aws:TagKeys`), the resource's tags at that moment (`aws:ResourceTag/*`,
//! replayed from the log), the managed policy attached (`iam:PolicyARN`),
//! and the actions AWS authorizes alongside (`iam:PassRole` for Pod Identity
//! and instance profiles, `*:Tag*` for tags on create). An operation this
//! does not know fails the test, so a new call cannot slip by unevaluated.

mod common;

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use test_support::aws_requests::{numbered, param};
use test_support::iam::{Decision, IamRequest, request_tags};
use test_support::{DevEnv, LoggedRequest, MotoServer, Part};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

/// Runs the binary signed with access key `key`; panics unless it exits 0
/// (or 2 for `status`, which says something is missing).
fn bootstrap(endpoint: &str, key: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("run karpenter-bootstrap");
    let ok = out.status.success() || (args[0] == "status" && out.status.code() == Some(2));
    assert!(
        ok,
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tags as IAM sees them on the resource a request acts on (none when unknown).
fn resource_tags(tags: Option<&BTreeMap<String, String>>) -> BTreeMap<String, Value> {
    tags.map(test_support::iam::resource_tags)
        .unwrap_or_default()
}

/// A query-protocol body (`Action=...&Name=...`).
fn form(request: &LoggedRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(request.body.as_bytes())
        .into_owned()
        .collect()
}

/// A path segment, percent-decoded.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `<prefix>.N.Key` / `.Value` pairs.
fn keyed(params: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    (1..)
        .map_while(|i| {
            let key = param(params, &format!("{prefix}.{i}.Key"))?;
            let value = param(params, &format!("{prefix}.{i}.Value")).unwrap_or_default();
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// JSON `[{"Key": .., "Value": ..}]` or `{"k": "v"}` tags.
fn json_tags(value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|t| {
                Some((
                    t["Key"].as_str()?.to_string(),
                    t["Value"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn iam_arn(resource: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{resource}")
}

fn ec2_arn(id: &str) -> String {
    let kind = match id.split('-').next().unwrap_or_default() {
        "subnet" => "subnet",
        "sg" => "security-group",
        "i" => "instance",
        "vpc" => "vpc",
        other => panic!("no ARN for EC2 id {id} ({other})"),
    };
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}")
}

/// Turns the log into what IAM authorizes for the requests signed by `key`,
/// replaying every request (whoever signed it) for the tags resources carry.
#[derive(Default)]
struct Mapper {
    /// Tags by resource ARN (or EC2 id), as the log has set them so far.
    tags: HashMap<String, BTreeMap<String, String>>,
    out: Vec<IamRequest>,
    unknown: Vec<String>,
}

impl Mapper {
    fn push(&mut self, action: &str, resource: String, mut context: BTreeMap<String, Value>) {
        context.insert("aws:RequestedRegion".into(), json!(REGION));
        self.out.push(IamRequest {
            action: action.into(),
            resource,
            context,
        });
    }

    /// The action on `resource` with the resource's tags as context.
    fn on(&mut self, action: &str, resource: String) {
        let context = resource_tags(self.tags.get(&resource));
        self.push(action, resource, context);
    }

    /// Creating `resource` with `tags` (and tagging it, which IAM authorizes too).
    fn create(
        &mut self,
        action: &str,
        tag_action: &str,
        resource: String,
        tags: BTreeMap<String, String>,
    ) {
        self.push(action, resource.clone(), request_tags(&tags));
        if !tags.is_empty() {
            self.push(tag_action, resource.clone(), request_tags(&tags));
        }
        self.tags.entry(resource).or_default().extend(tags);
    }

    fn pass_role(&mut self, role_arn: &str, service: &str) {
        self.push(
            "iam:PassRole",
            role_arn.to_string(),
            BTreeMap::from([("iam:PassedToService".into(), json!(service))]),
        );
    }

    fn map(&mut self, r: &LoggedRequest, evaluate: bool) {
        let before = (self.out.len(), self.unknown.len());
        match r.service.as_str() {
            "iam" => self.iam(r),
            "sqs" => self.sqs(r),
            "events" => self.events(r),
            "eks" => self.eks(r),
            "ec2" => self.ec2(r),
            "sts" => {} // GetCallerIdentity needs no permission.
            other => self
                .unknown
                .push(format!("{other} {} {}", r.method, r.path)),
        }
        if !evaluate {
            // Arranged by the test: only its effect on tags is kept.
            self.out.truncate(before.0);
            self.unknown.truncate(before.1);
        }
    }

    fn iam(&mut self, r: &LoggedRequest) {
        let p = form(r);
        let action = param(&p, "Action").unwrap_or_default().to_string();
        let role = param(&p, "RoleName").map(|n| iam_arn(&format!("role/{n}")));
        let profile =
            param(&p, "InstanceProfileName").map(|n| iam_arn(&format!("instance-profile/{n}")));
        let tags = keyed(&p, "Tags.member");
        match action.as_str() {
            "CreateRole" => self.create("iam:CreateRole", "iam:TagRole", role.unwrap(), tags),
            "CreateInstanceProfile" => self.create(
                "iam:CreateInstanceProfile",
                "iam:TagInstanceProfile",
                profile.unwrap(),
                tags,
            ),
            "CreateOpenIDConnectProvider" => {
                let url = param(&p, "Url").unwrap_or_default();
                let host = url.trim_start_matches("https://");
                self.create(
                    "iam:CreateOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider",
                    iam_arn(&format!("oidc-provider/{host}")),
                    tags,
                );
            }
            "AttachRolePolicy" | "DetachRolePolicy" => {
                let policy = param(&p, "PolicyArn").unwrap_or_default();
                self.push(
                    &format!("iam:{action}"),
                    role.unwrap(),
                    BTreeMap::from([("iam:PolicyARN".into(), json!(policy))]),
                );
            }
            "AddRoleToInstanceProfile" => {
                self.on("iam:AddRoleToInstanceProfile", profile.unwrap());
                self.pass_role(&role.unwrap(), "ec2.amazonaws.com");
            }
            "RemoveRoleFromInstanceProfile"
            | "DeleteInstanceProfile"
            | "GetInstanceProfile"
            | "TagInstanceProfile" => self.on(&format!("iam:{action}"), profile.unwrap()),
            "GetOpenIDConnectProvider"
            | "DeleteOpenIDConnectProvider"
            | "AddClientIDToOpenIDConnectProvider"
            | "TagOpenIDConnectProvider" => {
                let arn = param(&p, "OpenIDConnectProviderArn")
                    .unwrap_or_default()
                    .to_string();
                self.on(&format!("iam:{action}"), arn);
            }
            "ListOpenIDConnectProviders" => self.on("iam:ListOpenIDConnectProviders", "*".into()),
            _ if role.is_some() => self.on(&format!("iam:{action}"), role.unwrap()),
            other => self.unknown.push(format!("iam {other}")),
        }
    }

    fn sqs(&mut self, r: &LoggedRequest) {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let action = r.target.rsplit('.').next().unwrap_or_default().to_string();
        let name = body["QueueName"]
            .as_str()
            .or_else(|| body["QueueUrl"].as_str().and_then(|u| u.rsplit('/').next()))
            .unwrap_or_default();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        match action.as_str() {
            "CreateQueue" => self.create(
                "sqs:CreateQueue",
                "sqs:TagQueue",
                arn,
                json_tags(body.get("tags")),
            ),
            "" => self.unknown.push(format!("sqs {}", r.body)),
            _ => self.on(&format!("sqs:{action}"), arn),
        }
    }

    fn events(&mut self, r: &LoggedRequest) {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let action = r.target.rsplit('.').next().unwrap_or_default().to_string();
        let rule = body["Name"]
            .as_str()
            .or(body["Rule"].as_str())
            .map(|n| format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{n}"))
            .or_else(|| body["ResourceARN"].as_str().map(str::to_string));
        match (action.as_str(), rule) {
            ("PutRule", Some(arn)) => self.create(
                "events:PutRule",
                "events:TagResource",
                arn,
                json_tags(body.get("Tags")),
            ),
            ("PutEvents", _) => self.on("events:PutEvents", "*".into()),
            (_, Some(arn)) => self.on(&format!("events:{action}"), arn),
            (other, None) => self.unknown.push(format!("events {other}")),
        }
    }

    fn eks(&mut self, r: &LoggedRequest) {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let parts: Vec<String> = r
            .path
            .trim_start_matches('/')
            .split('/')
            .map(decode)
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let arn = |resource: String| format!("arn:aws:eks:{REGION}:{ACCOUNT}:{resource}");
        let tags = json_tags(body.get("tags"));
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["clusters"]) => {} // arranged by the test (CreateCluster)
            ("GET", ["clusters", cluster]) => {
                self.on("eks:DescribeCluster", arn(format!("cluster/{cluster}")))
            }
            ("POST", ["clusters", cluster, "access-entries"]) => self.create(
                "eks:CreateAccessEntry",
                "eks:TagResource",
                arn(format!("cluster/{cluster}")),
                tags,
            ),
            // The principal's ARN (slashes and all) is the rest of the path.
            (method, ["clusters", cluster, "access-entries", principal @ ..]) => {
                let action = if method == "DELETE" {
                    "eks:DeleteAccessEntry"
                } else {
                    "eks:DescribeAccessEntry"
                };
                let name = principal.last().copied().unwrap_or_default();
                self.on(
                    action,
                    arn(format!(
                        "access-entry/{cluster}/role/{ACCOUNT}/{name}/00000000-0000-0000-0000-000000000000"
                    )),
                );
            }
            ("POST", ["clusters", cluster, "pod-identity-associations"]) => {
                self.create(
                    "eks:CreatePodIdentityAssociation",
                    "eks:TagResource",
                    arn(format!("cluster/{cluster}")),
                    tags,
                );
                self.pass_role(
                    body["roleArn"].as_str().unwrap_or_default(),
                    "pods.eks.amazonaws.com",
                );
            }
            ("GET", ["clusters", cluster, "pod-identity-associations"]) => self.on(
                "eks:ListPodIdentityAssociations",
                arn(format!("cluster/{cluster}")),
            ),
            (method, ["clusters", cluster, "pod-identity-associations", id]) => {
                let action = match method {
                    "DELETE" => "eks:DeletePodIdentityAssociation",
                    "POST" => "eks:UpdatePodIdentityAssociation",
                    _ => "eks:DescribePodIdentityAssociation",
                };
                self.on(
                    action,
                    arn(format!("podidentityassociation/{cluster}/{id}")),
                );
                if let Some(role) = body["roleArn"].as_str() {
                    self.pass_role(role, "pods.eks.amazonaws.com");
                }
            }
            (method, path) => self
                .unknown
                .push(format!("eks {method} /{}", path.join("/"))),
        }
    }

    fn ec2(&mut self, r: &LoggedRequest) {
        let p = form(r);
        let action = param(&p, "Action").unwrap_or_default().to_string();
        match action.as_str() {
            "CreateTags" | "DeleteTags" => {
                let tags = keyed(&p, "Tag");
                for id in numbered(&p, "ResourceId") {
                    let mut context = request_tags(&tags);
                    context.extend(resource_tags(self.tags.get(id)));
                    self.push(&format!("ec2:{action}"), ec2_arn(id), context);
                    let current = self.tags.entry(id.to_string()).or_default();
                    for (k, v) in &tags {
                        if action == "CreateTags" {
                            current.insert(k.clone(), v.clone());
                        } else {
                            current.remove(k);
                        }
                    }
                }
            }
            "RunInstances" => {} // arranged by the test; its tags are below
            "TerminateInstances" => {
                for id in numbered(&p, "InstanceId") {
                    let context = resource_tags(self.tags.get(id));
                    self.push("ec2:TerminateInstances", ec2_arn(id), context);
                }
            }
            read if read.starts_with("Describe") => self.on(&format!("ec2:{read}"), "*".into()),
            "CreateVpc" | "CreateSubnet" | "CreateSecurityGroup" => {}
            other => self.unknown.push(format!("ec2 {other}")),
        }
    }
}

/// What the bootstrap signed with `key` asked IAM, and what it could not map.
fn requests_of(
    moto: &MotoServer,
    key: &str,
    instances: &HashMap<String, BTreeMap<String, String>>,
) -> (Vec<IamRequest>, Vec<String>) {
    let mut mapper = Mapper::default();
    for (id, tags) in instances {
        mapper.tags.insert(id.clone(), tags.clone());
    }
    for r in moto.requests() {
        mapper.map(&r, r.key == key);
    }
    (mapper.out, mapper.unknown)
}

/// The policy `karpenter-bootstrap policy` prints for `cluster`.
fn policy(cluster: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["policy", "--cluster-name", cluster, "--region", REGION])
        .args(["--account-id", ACCOUNT])
        .output()
        .expect("run karpenter-bootstrap policy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON policy")
}

fn evaluate(simulator: &std::path::Path, cluster: &str, requests: &[IamRequest]) -> Vec<Decision> {
    test_support::iam::evaluate(
        simulator,
        &format!("arn:aws:iam::{ACCOUNT}:role/platform-operator"),
        ACCOUNT,
        &policy(cluster),
        requests,
    )
}

/// A subnet, a security group, and a NodePool's instance of cluster `demo`;
/// returns their ids and the instance's tags.
async fn arrange(
    config: &aws_config::SdkConfig,
) -> (String, String, String, BTreeMap<String, String>) {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let (subnet, group) = common::subnet_and_group(&ec2).await;
    let tags = BTreeMap::from([
        (
            "kubernetes.io/cluster/demo".to_string(),
            "owned".to_string(),
        ),
        ("karpenter.sh/nodepool".to_string(), "default".to_string()),
    ]);
    let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let image = common::amazon_image(&ec2).await;
    let instance = common::launch(&ec2, &image, &pairs).await;
    (subnet, group, instance, tags)
}

/// The instance profile the controller makes for an EC2NodeClass, holding the node role.
async fn controller_profile(config: &aws_config::SdkConfig) {
    let iam = aws_sdk_iam::Client::new(config);
    common::cluster_instance_profile(&iam, "demo_1234567890", "demo").await;
}

/// Undoes by hand what `apply` set on the queue, a rule, a role and the
/// Pod Identity association, so the next `apply` puts each back.
async fn drift(config: &aws_config::SdkConfig) {
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = sqs
        .get_queue_url()
        .queue_name("Karpenter-demo")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            "600",
        )
        .send()
        .await
        .unwrap();
    aws_sdk_eventbridge::Client::new(config)
        .remove_targets()
        .rule("Karpenter-demo-SpotInterruption")
        .ids(karpenter_bootstrap::aws::rules::TARGET_ID)
        .send()
        .await
        .unwrap();
    let iam = aws_sdk_iam::Client::new(config);
    iam.update_assume_role_policy()
        .role_name("KarpenterController-demo")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("KarpenterNodeRole-demo")
        .policy_arn("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_request_the_bootstrap_makes_is_allowed_by_its_shipped_policy() {
    let env = DevEnv::load();
    let test = "bootstrap iam evaluated";
    if env.require(Part::MotoServer, test).is_none() {
        return;
    }
    let Some(simulator) = env.require(Part::IamSimulate, test) else {
        return;
    };
    let moto = MotoServer::start_logging(&env).expect("moto");
    let endpoint = moto.endpoint();
    let config = test_support::aws::sdk_config(&endpoint).await;
    common::eks_cluster(&config, "demo").await;
    common::eks_cluster(&config, "irsa").await;
    let (subnet, group, instance, instance_tags) = arrange(&config).await;

    // Pod Identity, everything optional on, run as a user runs it.
    let target = |command: &'static str| {
        vec![
            command,
            "--cluster-name",
            "demo",
            "--aws-only",
            "--ssm",
            "--instance-profile",
            "--discovery-tag",
            subnet.as_str(),
            "--discovery-tag",
            group.as_str(),
        ]
    };
    for command in ["status", "plan", "apply", "apply", "status"] {
        bootstrap(&endpoint, "operator-demo", &target(command));
    }
    // Changed by hand: the next apply's update calls are evaluated too.
    drift(&config).await;
    for command in ["plan", "apply"] {
        bootstrap(&endpoint, "operator-demo", &target(command));
    }
    controller_profile(&config).await;
    let mut destroy = target("destroy");
    destroy.push("--force-terminate");
    bootstrap(&endpoint, "operator-demo", &destroy);

    // IRSA on a second cluster.
    let irsa = |command: &'static str| {
        vec![
            command,
            "--cluster-name",
            "irsa",
            "--aws-only",
            "--oidc-issuer",
            ISSUER,
        ]
    };
    for command in ["apply", "apply", "destroy"] {
        bootstrap(&endpoint, "operator-irsa", &irsa(command));
    }

    let instances = HashMap::from([(instance.clone(), instance_tags)]);
    let mut table = Vec::new();
    for (key, cluster) in [("operator-demo", "demo"), ("operator-irsa", "irsa")] {
        let (requests, unknown) = requests_of(&moto, key, &instances);
        assert!(
            unknown.is_empty(),
            "{cluster}: operations not mapped to IAM (add them): {unknown:?}"
        );
        assert!(!requests.is_empty(), "{cluster}: no requests logged");
        let decisions = evaluate(&simulator, cluster, &requests);
        let denied: Vec<_> = decisions.iter().filter(|d| d.result != "Allowed").collect();
        assert!(
            denied.is_empty(),
            "{cluster}: denied by the bootstrap policy: {denied:#?}"
        );
        let mut actions: Vec<&str> = requests.iter().map(|r| r.action.as_str()).collect();
        actions.sort();
        actions.dedup();
        table.push((cluster, requests.len(), actions.len()));
        if cluster == "demo" {
            for needed in [
                "sqs:SetQueueAttributes",
                "events:PutTargets",
                "iam:UpdateAssumeRolePolicy",
                "iam:AttachRolePolicy",
                "ec2:TerminateInstances",
                "ec2:DeleteTags",
                "iam:DeleteInstanceProfile",
                "eks:CreatePodIdentityAssociation",
                "iam:PassRole",
            ] {
                assert!(
                    actions.contains(&needed),
                    "the run never asked for {needed}: {actions:?}"
                );
            }
        } else {
            assert!(
                actions.contains(&"iam:CreateOpenIDConnectProvider"),
                "{actions:?}"
            );
        }
    }
    eprintln!("cluster | requests evaluated | distinct actions | denied");
    for (cluster, requests, actions) in table {
        eprintln!("{cluster:>7} | {requests:>18} | {actions:>16} | 0");
    }
}

/// The policy's conditions bite: the same actions out of scope are denied.
#[test]
fn the_bootstrap_policy_denies_what_is_not_this_clusters() {
    let env = DevEnv::load();
    let Some(simulator) = env.require(Part::IamSimulate, "bootstrap iam scope") else {
        return;
    };
    let tags = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let with_region = |mut context: BTreeMap<String, Value>| {
        context.insert("aws:RequestedRegion".into(), json!(REGION));
        context
    };
    let request = |action: &str, resource: String, context: BTreeMap<String, Value>| IamRequest {
        action: action.into(),
        resource,
        context: with_region(context),
    };
    let subnet = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-1");
    let out_of_scope = vec![
        // Another cluster's discovery tag, or another key.
        request(
            "ec2:CreateTags",
            subnet.clone(),
            request_tags(&tags(&[("karpenter.sh/discovery", "other")])),
        ),
        request(
            "ec2:CreateTags",
            subnet.clone(),
            request_tags(&tags(&[("karpenter.sh/discovery", "demo"), ("Name", "x")])),
        ),
        // A discovery tag the bootstrap did not set.
        request("ec2:DeleteTags", subnet, {
            let mut c = request_tags(&tags(&[("karpenter.sh/discovery", "demo")]));
            c.extend(resource_tags(Some(&tags(&[(
                "karpenter.sh/discovery",
                "demo",
            )]))));
            c
        }),
        // An instance that is not a NodePool's of this cluster.
        request(
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-1"),
            resource_tags(Some(&tags(&[("kubernetes.io/cluster/demo", "owned")]))),
        ),
        // Another cluster's instance profile, queue, role, access.
        request(
            "iam:DeleteInstanceProfile",
            iam_arn("instance-profile/other_1"),
            resource_tags(Some(&tags(&[("kubernetes.io/cluster/other", "owned")]))),
        ),
        request(
            "sqs:DeleteQueue",
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:Karpenter-other"),
            BTreeMap::new(),
        ),
        request(
            "iam:DeleteRole",
            iam_arn("role/KarpenterNodeRole-other"),
            BTreeMap::new(),
        ),
        request(
            "eks:CreateAccessEntry",
            format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/other"),
            BTreeMap::new(),
        ),
        // A managed policy of the account's own, and passing a role to another service.
        request(
            "iam:AttachRolePolicy",
            iam_arn("role/KarpenterNodeRole-demo"),
            BTreeMap::from([("iam:PolicyARN".into(), json!(iam_arn("policy/Admin")))]),
        ),
        request(
            "iam:PassRole",
            iam_arn("role/KarpenterController-demo"),
            BTreeMap::from([("iam:PassedToService".into(), json!("lambda.amazonaws.com"))]),
        ),
    ];
    let decisions = evaluate(&simulator, "demo", &out_of_scope);
    let allowed: Vec<_> = decisions.iter().filter(|d| d.result == "Allowed").collect();
    assert!(allowed.is_empty(), "allowed out of scope: {allowed:#?}");
}
