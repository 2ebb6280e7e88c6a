//! The AWS account the journey starts from, on moto: what a platform team
//! already has before Karpenter (a VPC with subnets and a node security
//! group tagged for discovery, the EKS cluster, an EKS-optimised image).

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use base64::Engine;
use karpenter_sim::boot::ClusterIdentity;
use test_support::{LoggedRequest, MotoServer};

/// The region everything runs in.
pub const REGION: &str = "us-east-1";
/// moto's account.
pub const ACCOUNT_ID: &str = "123456789012";

/// A seeded moto account.
pub struct Account {
    /// The SDK configuration (the operator's credentials).
    pub config: aws_config::SdkConfig,
    /// moto's endpoint.
    pub endpoint: String,
    /// The image the EC2NodeClass pins (moto's EKS node image, x86_64).
    pub image_id: String,
    /// The cluster as EKS describes it: what nodes must join.
    pub cluster: ClusterIdentity,
    /// Stops moto when dropped.
    moto: MotoServer,
}

fn tagged(resource: ResourceType, key: &str, value: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .build()
}

impl Account {
    /// Starts moto and creates the account's network, cluster and image.
    pub async fn seed(moto: MotoServer, cluster_name: &str) -> Account {
        let endpoint = moto.endpoint();
        let config = test_support::aws::sdk_config(&endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("vpc")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("vpc id");
        let discovery = "karpenter.sh/discovery";
        for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .enumerate()
        {
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.0.{i}.0/24"))
                .availability_zone(*zone)
                .tag_specifications(tagged(ResourceType::Subnet, discovery, cluster_name))
                .send()
                .await
                .expect("subnet");
        }
        ec2.create_security_group()
            .group_name(format!("{cluster_name}-nodes"))
            .description("nodes")
            .vpc_id(&vpc)
            .tag_specifications(tagged(ResourceType::SecurityGroup, discovery, cluster_name))
            .send()
            .await
            .expect("security group");
        let mut images: Vec<String> = ec2
            .describe_images()
            .owners("amazon")
            .filters(
                Filter::builder()
                    .name("name")
                    .values("amazon-eks-node-linux")
                    .build(),
            )
            .send()
            .await
            .expect("images")
            .images
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.image_id)
            .collect();
        images.sort();
        let image_id = images.first().cloned().expect("moto preloads an EKS image");
        let described = aws_sdk_eks::Client::new(&config)
            .create_cluster()
            .name(cluster_name)
            .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/eks-cluster"))
            .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
            .kubernetes_network_config(
                aws_sdk_eks::types::KubernetesNetworkConfigRequest::builder()
                    .service_ipv4_cidr("10.100.0.0/16")
                    .build(),
            )
            .send()
            .await
            .expect("EKS cluster")
            .cluster
            .expect("the cluster");
        let ca = described
            .certificate_authority
            .and_then(|c| c.data)
            .expect("the cluster's CA");
        let cluster = ClusterIdentity {
            name: cluster_name.into(),
            endpoint: described.endpoint.expect("the cluster's endpoint"),
            ca_pem: String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(ca)
                    .expect("base64 CA"),
            )
            .into_owned(),
        };
        Account {
            config,
            endpoint,
            image_id,
            cluster,
            moto,
        }
    }

    /// Every request moto received so far (when it was started with
    /// [`MotoServer::start_logging`]); `key` tells who signed each.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.moto.requests()
    }

    /// Credentials of `role_arn`, as EKS Pod Identity would hand them to
    /// the pod (here through `sts:AssumeRole`, which moto answers), as the
    /// environment the AWS SDK reads.
    pub async fn role_credentials(&self, role_arn: &str) -> Vec<(String, String)> {
        let sts = aws_sdk_sts::Client::new(&self.config);
        let credentials = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name("karpenter-controller")
            .send()
            .await
            .expect("AssumeRole")
            .credentials
            .expect("credentials");
        [
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
            ("AWS_SESSION_TOKEN", credentials.session_token),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }
}
