//! The documents against moto's IAM and SQS (a real emulator of the AWS
//! APIs): each is accepted where it goes, a role with the controller policy
//! and the node role can be created and linked, and what AWS stores is what
//! was sent.

use karpenter_iam::controller::{
    ControllerPolicy, ControllerTrust, controller_policy, controller_trust,
};
use karpenter_iam::node::{IpFamily, node_managed_policy_arns, node_trust};
use karpenter_iam::parse_document;
use karpenter_iam::queue::{queue_name, queue_policy};
use pretty_assertions::assert_eq;
use test_support::aws::sdk_config;
use test_support::{DevEnv, MotoServer, Part};

fn decoded(document: &str) -> serde_json::Value {
    parse_document(document).expect("a policy document")
}

#[tokio::test]
async fn roles_policies_and_the_queue_policy_are_accepted_as_written() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "iam moto").is_none() {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let config = sdk_config(&moto.endpoint()).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    let node = iam
        .create_role()
        .role_name("KarpenterNodeRole-demo")
        .assume_role_policy_document(node_trust("aws").to_string())
        .send()
        .await
        .expect("node role")
        .role
        .unwrap();
    for arn in node_managed_policy_arns("aws", IpFamily::Ipv4, true) {
        iam.attach_role_policy()
            .role_name("KarpenterNodeRole-demo")
            .policy_arn(&arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("attach {arn}: {e:?}"));
    }

    let queue_url = sqs
        .create_queue()
        .queue_name(queue_name("demo"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .unwrap();
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:Karpenter-demo";
    let written = queue_policy(queue_arn);
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            written.to_string(),
        )
        .send()
        .await
        .expect("queue policy");
    let stored = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy]
        .clone();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        written
    );

    let policy = ControllerPolicy {
        interruption_queue_arn: Some(queue_arn.into()),
        ..ControllerPolicy::new("demo", "us-east-1", "123456789012", node.arn())
    };
    let document = controller_policy(&policy);
    let created = iam
        .create_policy()
        .policy_name("KarpenterController-demo")
        .policy_document(document.to_string())
        .send()
        .await
        .expect("controller policy accepted")
        .policy
        .unwrap();
    let version = iam
        .get_policy_version()
        .policy_arn(created.arn().unwrap())
        .version_id(created.default_version_id().unwrap())
        .send()
        .await
        .unwrap()
        .policy_version
        .unwrap();
    assert_eq!(decoded(version.document().unwrap()), document);

    for (name, trust) in [
        ("KarpenterController-pod-identity", ControllerTrust::PodIdentity),
        (
            "KarpenterController-irsa",
            ControllerTrust::Irsa {
                oidc_provider_arn: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                namespace: "kube-system".into(),
                service_account: "karpenter".into(),
            },
        ),
    ] {
        let trust = controller_trust(&trust);
        let role = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .role
            .unwrap();
        assert_eq!(
            decoded(role.assume_role_policy_document().unwrap()),
            trust,
            "{name}"
        );
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(created.arn().unwrap())
            .send()
            .await
            .expect("attach the controller policy");
    }
}
