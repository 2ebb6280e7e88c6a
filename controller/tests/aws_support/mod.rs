//! A moto-backed AWS account for the EC2 provider's tests: a VPC with one
//! tagged subnet per us-east-1 zone, a tagged security group, AL2023 images
//! published under a test SSM prefix (moto refuses writes under `/aws`), the
//! node role, and a fault-injection proxy between the SDK and moto.

pub mod ec2;
pub mod iam_requests;
pub mod proxy;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use karpenter_api::v1::EC2NodeClass;
use karpenter_controller::cloud::aws::{AwsClients, AwsCloudProvider, AwsSettings};
use proxy::FaultProxy;
use serde_json::json;
use test_support::{DevEnv, MotoServer, Part};

/// The SSM prefix the tests publish AMI parameters under.
pub const SSM_PREFIX: &str = "/test/aws/service";

/// The zones of us-east-1 that get a subnet.
pub const ZONES: &[&str] = &[
    "us-east-1a",
    "us-east-1b",
    "us-east-1c",
    "us-east-1d",
    "us-east-1e",
    "us-east-1f",
];

/// One isolated AWS account.
pub struct AwsEnv {
    /// The provider under test (talks through the proxy).
    pub cloud: AwsCloudProvider,
    /// Clients for arranging and checking state (through the proxy too).
    pub clients: AwsClients,
    /// The proxy; its faults are off until a test sets them.
    pub proxy: FaultProxy,
    /// A NodeClass resolved against this account.
    pub class: EC2NodeClass,
    /// Image ids: amd64, arm64.
    pub images: (String, String),
    /// Dropped last: stops the server.
    _moto: MotoServer,
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

pub use test_support::aws::{sdk_config, sdk_config_signed_by};

/// The access key id the provider under test signs with.
pub const CONTROLLER_KEY: &str = "controller";

/// The NodeClass the tests launch with.
pub fn node_class(name: &str) -> EC2NodeClass {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": name, "uid": "c0ffee00-0000-4000-8000-000000000001", "generation": 1},
        "spec": {
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "role": "KarpenterNodeRole-demo",
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "*"}}],
            "tags": {"team": "platform"}
        }
    }))
    .expect("a valid EC2NodeClass")
}

impl AwsEnv {
    /// Starts moto and the proxy, seeds the account and resolves the NodeClass;
    /// `None` (after a loud skip message) when moto is not installed outside CI.
    pub async fn start(test: &str) -> Option<AwsEnv> {
        let env = DevEnv::load();
        env.require(Part::Python, test)?;
        let moto = MotoServer::start(&env).expect("moto starts");
        let proxy = FaultProxy::start(moto.endpoint()).await;
        let config = sdk_config(&proxy.endpoint).await;
        let clients = AwsClients::new(&config);
        let images = seed(&clients).await;
        // The simulated cluster's facts, so a test can boot the instances
        // against the same identity (`boot::sim_cluster_identity`).
        let cluster = karpenter_sim::boot::sim_cluster_info();
        let mut settings = AwsSettings::new(cluster, "us-east-1", "1.33");
        settings.ssm_prefix = SSM_PREFIX.into();
        // moto has no Pricing API (its in-process server never answers GetProducts).
        settings.isolated_vpc = true;
        // The provider signs as `controller`: its requests are the ones
        // `assert_iam_allowed` evaluates, not the test's own.
        let controller =
            AwsClients::new(&sdk_config_signed_by(&proxy.endpoint, CONTROLLER_KEY).await);
        let cloud = AwsCloudProvider::new(controller, settings);
        let mut class = node_class("default");
        class.status = Some(cloud.resolve(&class).await);
        Some(AwsEnv {
            cloud,
            clients,
            proxy,
            class,
            images,
            _moto: moto,
        })
    }
}

async fn seed(clients: &AwsClients) -> (String, String) {
    let ec2 = &clients.ec2;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc.vpc.and_then(|v| v.vpc_id).expect("vpc id");
    for (i, zone) in ZONES.iter().enumerate() {
        ec2.create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.0.{i}.0/24"))
            .availability_zone(*zone)
            .tag_specifications(tags(
                ResourceType::Subnet,
                &[("karpenter.sh/discovery", "demo")],
            ))
            .send()
            .await
            .expect("subnet");
    }
    ec2.create_security_group()
        .group_name("demo-nodes")
        .description("nodes")
        .vpc_id(&vpc_id)
        .tag_specifications(tags(
            ResourceType::SecurityGroup,
            &[("karpenter.sh/discovery", "demo")],
        ))
        .send()
        .await
        .expect("security group");
    // moto's RegisterImage drops the architecture: publish two of its
    // preloaded Amazon images (an EKS one for amd64, an arm64 one) instead.
    let mut ids = Vec::new();
    for (arch, filter, value) in [
        ("x86_64", "name", "amazon-eks-node-linux"),
        ("arm64", "architecture", "arm64"),
    ] {
        let images = ec2
            .describe_images()
            .owners("amazon")
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(filter)
                    .values(value)
                    .build(),
            )
            .send()
            .await
            .expect("images");
        let mut found: Vec<String> = images
            .images
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.image_id)
            .collect();
        found.sort();
        let id = found.first().cloned().expect("moto preloads this image");
        clients
            .ssm
            .put_parameter()
            .name(format!("{SSM_PREFIX}/eks/optimized-ami/1.33/amazon-linux-2023/{arch}/standard/recommended/image_id"))
            .value(&id)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("parameter");
        ids.push(id);
    }
    clients
        .iam
        .create_role()
        .role_name("KarpenterNodeRole-demo")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("role");
    (ids[0].clone(), ids[1].clone())
}

impl AwsEnv {
    /// Evaluates every request the provider made so far against the
    /// controller policy `karpenter-iam` ships (conditions included);
    /// panics on any deny. Skips loudly (fails under `CI=true`) without the
    /// simulator.
    pub async fn assert_iam_allowed(&self) {
        let devenv = DevEnv::load();
        let Some(simulator) = devenv.require(Part::IamSimulate, "IAM evaluation") else {
            return;
        };
        let seen: Vec<_> = self
            .proxy
            .with(|f| f.requests.clone())
            .into_iter()
            .filter(|r| r.signer == CONTROLLER_KEY)
            .collect();
        iam_requests::assert_allowed(&simulator, &self.clients.ec2, &seen, 0, false).await;
    }
}

/// Boots `instance` the way its AMI family's agent would
/// (`karpenter_sim::boot::ec2`), in us-east-1.
pub async fn boot_instance(
    ec2: &aws_sdk_ec2::Client,
    instance: &karpenter_controller::cloud::Instance,
    class: &EC2NodeClass,
    cluster: &karpenter_sim::boot::ClusterIdentity,
) -> Result<k8s_openapi::api::core::v1::Node, karpenter_sim::boot::ec2::InstanceBootError> {
    let launched = karpenter_sim::boot::ec2::LaunchedInstance {
        id: instance.id.clone(),
        instance_type: instance.instance_type.clone(),
        zone: instance.zone.clone(),
        region: "us-east-1".into(),
    };
    karpenter_sim::boot::ec2::boot_instance(ec2, &launched, class, cluster).await
}
