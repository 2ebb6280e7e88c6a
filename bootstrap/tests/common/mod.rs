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
