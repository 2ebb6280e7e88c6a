//! EKS access (the node role's access entry, the controller's Pod Identity
//! association) and IRSA's OIDC provider. moto has neither EKS API: those
//! calls reach the labelled fake in `test-support/src/fake_eks.py`, which
//! runs in moto's server and needs the cluster to exist in moto's EKS.

mod common;

use common::{account, moto};
use karpenter_bootstrap::aws::steps::{self, Identity, Options};
use karpenter_bootstrap::aws::{Clients, roles, teardown};
use karpenter_bootstrap::{Action, Mode};

#[tokio::test]
async fn access_entry_and_pod_identity_converge_and_come_down() {
    let Some((_moto, config)) = moto("bootstrap eks access").await else {
        return;
    };
    let account = account();
    let options = Options::default();
    let clients = Clients::new(&config);
    steps::reconcile(&account, &clients, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();

    let eks = aws_sdk_eks::Client::new(&config);
    let entry = eks
        .describe_access_entry()
        .cluster_name("demo")
        .principal_arn(roles::node_role_arn(&account))
        .send()
        .await
        .unwrap()
        .access_entry
        .unwrap();
    assert_eq!(entry.r#type(), Some("EC2_LINUX"));
    assert_eq!(entry.tags().unwrap()["kubernetes.io/cluster/demo"], "owned");
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name("demo")
        .namespace("kube-system")
        .service_account("karpenter")
        .send()
        .await
        .unwrap();
    let id = listed.associations()[0]
        .association_id()
        .unwrap()
        .to_string();
    let association = eks
        .describe_pod_identity_association()
        .cluster_name("demo")
        .association_id(&id)
        .send()
        .await
        .unwrap()
        .association
        .unwrap();
    assert_eq!(
        association.role_arn(),
        Some(roles::controller_role_arn(&account).as_str())
    );

    // Pointed at another role by hand: planned, and put back.
    eks.update_pod_identity_association()
        .cluster_name("demo")
        .association_id(&id)
        .role_arn("arn:aws:iam::123456789012:role/someone-else")
        .send()
        .await
        .unwrap();
    let planned = steps::reconcile(
        &account,
        &Clients::new(&config),
        Mode::Plan,
        &options,
        &mut |_| {},
    )
    .await
    .unwrap();
    let last = planned.last().unwrap();
    assert_eq!(last.resource, "eks-pod-identity kube-system/karpenter");
    assert_eq!(last.action, Action::Update(vec!["roleArn".into()]));
    steps::reconcile(
        &account,
        &Clients::new(&config),
        Mode::Apply,
        &options,
        &mut |_| {},
    )
    .await
    .unwrap();
    let again = Clients::new(&config);
    let clean = steps::reconcile(&account, &again, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    assert!(
        clean.iter().all(|c| c.action == Action::Unchanged),
        "{clean:?}"
    );
    assert_eq!(again.calls.writes(), 0);

    // Teardown removes both; an access entry somebody else made stays.
    eks.create_access_entry()
        .cluster_name("demo")
        .principal_arn("arn:aws:iam::123456789012:role/KarpenterNodeRole-other")
        .r#type("EC2_LINUX")
        .send()
        .await
        .unwrap();
    let gone = teardown::destroy(&account, &Clients::new(&config), Mode::Apply, &options)
        .await
        .unwrap();
    let deleted: Vec<&str> = gone
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.resource.as_str())
        .collect();
    assert!(
        deleted.contains(&"eks-pod-identity kube-system/karpenter"),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&format!("eks-access-entry {}", roles::node_role_arn(&account)).as_str()),
        "{deleted:?}"
    );
    let left = eks
        .list_access_entries()
        .cluster_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.access_entries(),
        ["arn:aws:iam::123456789012:role/KarpenterNodeRole-other"]
    );
}

#[tokio::test]
async fn irsa_gets_an_oidc_provider_and_a_federated_trust() {
    let Some((_moto, config)) = moto("bootstrap irsa").await else {
        return;
    };
    let account = account();
    let issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    let options = Options {
        identity: Identity::Irsa {
            issuer: issuer.into(),
        },
        ..Options::default()
    };
    let clients = Clients::new(&config);
    let applied = steps::reconcile(&account, &clients, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    let resources: Vec<&str> = applied.iter().map(|c| c.resource.as_str()).collect();
    assert!(
        resources.contains(&"iam-oidc-provider oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"),
        "{resources:?}"
    );
    assert!(
        !resources.iter().any(|r| r.starts_with("eks-pod-identity")),
        "IRSA needs no Pod Identity association: {resources:?}"
    );

    let iam = aws_sdk_iam::Client::new(&config);
    let provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(provider_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    let role = iam
        .get_role()
        .role_name(roles::controller_role_name(&account))
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let trust = karpenter_iam::parse_document(role.assume_role_policy_document().unwrap()).unwrap();
    let statement = &trust["Statement"][0];
    assert_eq!(statement["Principal"]["Federated"], provider_arn);
    assert_eq!(
        statement["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub"],
        serde_json::json!(["system:serviceaccount:kube-system:karpenter"])
    );

    let again = Clients::new(&config);
    steps::reconcile(&account, &again, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.calls.writes(), 0);
    teardown::destroy(&account, &Clients::new(&config), Mode::Apply, &options)
        .await
        .unwrap();
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
}
