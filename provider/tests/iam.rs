//! The IAM role resources with the real Terraform binaries against moto.
//! `karpenter_node_role`: create (role, policies, instance profile), a clean
//! re-plan, an in-place update, a policy detached by hand planned back,
//! a role deleted by hand recreated, import planning clean, an invalid value failing at plan time at its
//! attribute, and destroy leaving nothing. `karpenter_controller_role`: the
//! same, plus a hand-edited policy put back, and a switch to a managed
//! policy and IRSA in place.

mod common;

use common::Workspace;
use test_support::{DevEnv, MotoServer, Part};

fn config(endpoint: &str, body: &str) -> String {
    common::config(None, Some(endpoint), body)
}

/// moto, an IAM client on it and a workspace; `None` (after a loud skip,
/// or a failure under `CI=true`) when Terraform or moto is missing.
struct Setup {
    _moto: MotoServer,
    endpoint: String,
    iam: aws_sdk_iam::Client,
    ws: std::sync::Arc<Workspace>,
}

async fn setup(part: Part, name: &str) -> Option<Setup> {
    let env = DevEnv::load();
    let terraform = env.require(part, name)?;
    env.require(Part::MotoServer, name)?;
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    let iam = aws_sdk_iam::Client::new(&test_support::aws::sdk_config(&endpoint).await);
    let ws = std::sync::Arc::new(Workspace::new(terraform, name));
    Some(Setup {
        _moto: moto,
        endpoint,
        iam,
        ws,
    })
}

const ROLE: &str = r#"resource "karpenter_node_role" "nodes" {
  name                    = "KarpenterNodeRole-tf"
  create_instance_profile = true
  tags                    = { team = "platform" }
}"#;

async fn lifecycle(part: Part, name: &str) {
    let Some(Setup {
        _moto,
        endpoint,
        iam,
        ws,
    }) = setup(part, name).await
    else {
        return;
    };
    let dir = ws.dir.clone();
    let run = |args: &'static [&'static str]| {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || ws.run(args))
    };
    let write = |role: &str| std::fs::write(dir.join("main.tf"), config(&endpoint, role)).unwrap();
    let attached = || async {
        let out = iam
            .list_attached_role_policies()
            .role_name("KarpenterNodeRole-tf")
            .send()
            .await
            .unwrap();
        let mut names: Vec<String> = out
            .attached_policies()
            .iter()
            .map(|p| p.policy_name().unwrap().to_string())
            .collect();
        names.sort();
        names
    };

    write(ROLE);
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        attached().await,
        [
            "AmazonEC2ContainerRegistryPullOnly",
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy"
        ]
    );
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("KarpenterNodeRole-tf")
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.instance_profile().unwrap().roles()[0].role_name(),
        "KarpenterNodeRole-tf"
    );
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 0, "not clean after create: {text}");

    write(&ROLE.replace("team = \"platform\" }", "team = \"data\" }\n  ssm = true"));
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 added, 1 changed, 0 destroyed"), "{text}");
    assert!(
        attached()
            .await
            .contains(&"AmazonSSMManagedInstanceCore".to_string())
    );
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 0, "not clean after update: {text}");

    iam.detach_role_policy()
        .role_name("KarpenterNodeRole-tf")
        .policy_arn("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly")
        .send()
        .await
        .unwrap();
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 2, "a detached policy is planned back: {text}");
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        attached()
            .await
            .contains(&"AmazonEC2ContainerRegistryPullOnly".to_string())
    );

    // Deleted outside Terraform: recreated.
    let role = "KarpenterNodeRole-tf";
    iam.remove_role_from_instance_profile()
        .instance_profile_name(role)
        .role_name(role)
        .send()
        .await
        .unwrap();
    iam.delete_instance_profile()
        .instance_profile_name(role)
        .send()
        .await
        .unwrap();
    for policy in [
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonSSMManagedInstanceCore",
    ] {
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(format!("arn:aws:iam::aws:policy/{policy}"))
            .send()
            .await
            .unwrap();
    }
    iam.delete_role().role_name(role).send().await.unwrap();
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 added"), "{text}");
    assert_eq!(attached().await.len(), 4);

    let importer = ws.clone();
    tokio::task::spawn_blocking(move || {
        importer.import_plans_clean("karpenter_node_role.nodes", "KarpenterNodeRole-tf")
    })
    .await
    .unwrap();

    write(&ROLE.replace(
        "create_instance_profile = true",
        "create_instance_profile = true\n  ip_family = \"ipv5\"",
    ));
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("invalid ip_family") && text.contains("ipv5"),
        "{text}"
    );

    write(ROLE);
    let (code, text) = run(&["destroy", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        iam.get_role()
            .role_name("KarpenterNodeRole-tf")
            .send()
            .await
            .is_err()
    );
    assert!(
        iam.get_instance_profile()
            .instance_profile_name("KarpenterNodeRole-tf")
            .send()
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_role_lifecycle_with_terraform_1_0() {
    lifecycle(Part::Terraform1_0, "terraform 1.0 node role").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_role_lifecycle_with_terraform_1_15() {
    lifecycle(Part::Terraform1_15, "terraform 1.15 node role").await;
}

const CONTROLLER: &str = r#"resource "karpenter_controller_role" "controller" {
  name          = "KarpenterController-tf"
  cluster_name  = "tf"
  node_role_arn = "arn:aws:iam::123456789012:role/KarpenterNodeRole-tf"
}"#;

async fn controller_lifecycle(part: Part, name: &str) {
    let Some(Setup {
        _moto,
        endpoint,
        iam,
        ws,
    }) = setup(part, name).await
    else {
        return;
    };
    let dir = ws.dir.clone();
    let run = |args: &'static [&'static str]| {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || ws.run(args))
    };
    let write = |role: &str| std::fs::write(dir.join("main.tf"), config(&endpoint, role)).unwrap();
    let inline = || async {
        iam.get_role_policy()
            .role_name("KarpenterController-tf")
            .policy_name("KarpenterControllerPolicy")
            .send()
            .await
            .ok()
            .map(|p| karpenter_iam::parse_document(p.policy_document()).unwrap())
    };

    // Pod Identity, inline policy.
    write(CONTROLLER);
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    let policy = inline().await.expect("the inline policy");
    assert!(
        policy.to_string().contains("kubernetes.io/cluster/tf"),
        "{policy}"
    );
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 0, "not clean after create: {text}");

    // The policy edited by hand: planned back.
    iam.put_role_policy()
        .role_name("KarpenterController-tf")
        .policy_name("KarpenterControllerPolicy")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 2, "an edited policy is planned back: {text}");
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert_eq!(inline().await, Some(policy.clone()));

    // Managed policy, IRSA and a queue: updated in place.
    let irsa = CONTROLLER.replace(
        "KarpenterNodeRole-tf\"",
        "KarpenterNodeRole-tf\"\n  policy_mode   = \"managed\"\n  interruption_queue_arn = \"arn:aws:sqs:us-east-1:123456789012:Karpenter-tf\"\n  irsa_oidc_provider_arn = \"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/TF\"",
    );
    write(&irsa);
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 added, 1 changed, 0 destroyed"), "{text}");
    assert_eq!(
        inline().await,
        None,
        "the inline policy gave way to the managed one"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("KarpenterController-tf")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_name(),
        Some("KarpenterController-tf-policy")
    );
    let role = iam
        .get_role()
        .role_name("KarpenterController-tf")
        .send()
        .await
        .unwrap();
    let trust =
        karpenter_iam::parse_document(role.role().unwrap().assume_role_policy_document().unwrap())
            .unwrap();
    assert!(
        trust
            .to_string()
            .contains("system:serviceaccount:kube-system:karpenter"),
        "{trust}"
    );
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 0, "not clean after update: {text}");

    // Deleted outside Terraform: recreated.
    iam.detach_role_policy()
        .role_name("KarpenterController-tf")
        .policy_arn("arn:aws:iam::123456789012:policy/KarpenterController-tf-policy")
        .send()
        .await
        .unwrap();
    iam.delete_role()
        .role_name("KarpenterController-tf")
        .send()
        .await
        .unwrap();
    let (code, text) = run(&["apply", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 added"), "{text}");

    // Import reads the settings back from the documents.
    let importer = ws.clone();
    tokio::task::spawn_blocking(move || {
        importer.import_plans_clean(
            "karpenter_controller_role.controller",
            "KarpenterController-tf",
        )
    })
    .await
    .unwrap();

    // Invalid: a plan-time error at the attribute.
    write(&CONTROLLER.replace(
        "arn:aws:iam::123456789012:role/KarpenterNodeRole-tf",
        "not-an-arn",
    ));
    let (code, text) = run(&["plan", "-detailed-exitcode"]).await.unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("invalid node_role_arn"), "{text}");

    write(&irsa);
    let (code, text) = run(&["destroy", "-auto-approve"]).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        iam.get_role()
            .role_name("KarpenterController-tf")
            .send()
            .await
            .is_err()
    );
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap();
    assert!(
        policies.policies().is_empty(),
        "the managed policy is gone too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_role_lifecycle_with_terraform_1_0() {
    controller_lifecycle(Part::Terraform1_0, "terraform 1.0 controller role").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_role_lifecycle_with_terraform_1_15() {
    controller_lifecycle(Part::Terraform1_15, "terraform 1.15 controller role").await;
}
