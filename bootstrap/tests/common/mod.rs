//! What the bootstrap's tests share: the account moto serves, with its
//! EKS cluster.
#![allow(dead_code)] // each test file uses a different part

use karpenter_bootstrap::aws::Account;

/// Cluster `demo` in moto's default account, us-east-1.
pub fn account() -> Account {
    Account::new("demo", "us-east-1", "123456789012")
}

/// A fresh moto server and the SDK configuration for it; `None` (the test
/// skips loudly, or fails under `CI=true`) when moto is not installed.
pub async fn moto(test: &str) -> Option<(test_support::MotoServer, aws_config::SdkConfig)> {
    let env = test_support::DevEnv::load();
    env.require(test_support::Part::MotoServer, test)?;
    let moto = test_support::MotoServer::start(&env).expect("moto");
    let config = test_support::aws::sdk_config(&moto.endpoint()).await;
    eks_cluster(&config, "demo").await;
    Some((moto, config))
}

/// Creates EKS cluster `name` in moto: the access entry and Pod Identity
/// calls (answered by the labelled fake beside moto) need it to exist.
pub async fn eks_cluster(config: &aws_config::SdkConfig, name: &str) {
    aws_sdk_eks::Client::new(config)
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("moto creates the EKS cluster");
}

/// Runs one instance of `image` with `tags`; returns its id.
pub async fn launch(ec2: &aws_sdk_ec2::Client, image: &str, tags: &[(&str, &str)]) -> String {
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    ec2.run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("instance")
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

/// One of the Amazon images moto preloads.
pub async fn amazon_image(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_string()
}

/// A VPC with one subnet and one security group; returns their ids.
pub async fn subnet_and_group(ec2: &aws_sdk_ec2::Client) -> (String, String) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let group = ec2
        .create_security_group()
        .group_name("nodes")
        .description("nodes")
        .vpc_id(&vpc_id)
        .send()
        .await
        .unwrap();
    (subnet_id, group.group_id().unwrap().to_string())
}

/// The instance profile the controller makes for an EC2NodeClass of
/// `cluster` (tagged as the cluster's), holding `KarpenterNodeRole-demo`.
pub async fn cluster_instance_profile(iam: &aws_sdk_iam::Client, name: &str, cluster: &str) {
    iam.create_instance_profile()
        .instance_profile_name(name)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(format!("kubernetes.io/cluster/{cluster}"))
                .value("owned")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name("KarpenterNodeRole-demo")
        .send()
        .await
        .unwrap();
}
