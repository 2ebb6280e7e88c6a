//! Acceptance tests: the real Terraform binaries (1.0.3 and 1.15.x, from
//! `scripts/dev-env`) drive the provider binary against kubesim served over
//! TLS. For `karpenter_nodepool`: create, a clean re-plan, an in-place
//! update, a clean re-plan, a change made outside Terraform put back, an
//! object deleted outside Terraform recreated, import planning clean, an
//! invalid configuration failing at plan time at its attribute, a plan
//! with the cluster's address unknown, and a destroy that waits for the
//! pool's NodeClaims to be gone.

mod common;

use common::{Workspace, cluster};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use std::path::Path;
use test_support::{DevEnv, Part};

fn config(kubeconfig: &Path, body: &str) -> String {
    common::config(Some(kubeconfig), None, body)
}

const POOL: &str = r#"resource "karpenter_nodepool" "default" {
  name = "default"
  template {
    metadata {
      labels = { team = "platform" }
    }
    spec {
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = "default"
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["spot", "on-demand"]
      }
    }
  }
  limits = { cpu = "1000" }
}"#;

async fn lifecycle(part: Part, name: &str) {
    let env = DevEnv::load();
    let Some(terraform) = env.require(part, name) else {
        return;
    };
    let ws = Workspace::new(terraform, name);
    let (sim, served) = cluster(&ws.dir).await;
    let pools: Api<karpenter_api::v1::NodePool> = Api::all(sim.client());
    let kubeconfig = served.kubeconfig.clone();
    let run = |f: Box<dyn FnOnce(&Workspace) -> String + Send>| {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || f(&ws))
    };

    // Create, then nothing to do.
    ws.write(&config(&kubeconfig, POOL));
    run(Box::new(|ws| {
        ws.ok(&["apply", "-auto-approve", "-input=false"])
    }))
    .await
    .unwrap();
    let created = pools.get("default").await.unwrap();
    assert_eq!(
        created.spec.template.spec.requirements[0]
            .values
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        created
            .spec
            .disruption
            .as_ref()
            .unwrap()
            .consolidation_policy
            .as_deref(),
        Some("WhenEmptyOrUnderutilized"),
        "the server's defaults are there"
    );
    let (code, text) = run(Box::new(|ws| format!("{:?}", ws.plan())))
        .await
        .map(|t| (0, t))
        .unwrap();
    assert_eq!(code, 0);
    assert!(text.starts_with("(0,"), "not clean after create: {text}");

    // Update in place (not replaced), then nothing to do.
    let updated = POOL.replace(
        r#"  limits = { cpu = "1000" }"#,
        "  limits = { cpu = \"2000\" }\n  weight = 10\n  disruption {\n    consolidate_after = \"5m\"\n    budget {\n      nodes = \"20%\"\n    }\n  }",
    );
    ws.write(&config(&kubeconfig, &updated));
    let uid = created.metadata.uid.clone();
    let applied = run(Box::new(|ws| {
        ws.ok(&["apply", "-auto-approve", "-input=false"])
    }))
    .await
    .unwrap();
    assert!(
        applied.contains("0 added, 1 changed, 0 destroyed"),
        "{applied}"
    );
    let after = pools.get("default").await.unwrap();
    assert_eq!(after.metadata.uid, uid, "updated in place");
    assert_eq!(after.spec.weight, Some(10));
    let text = run(Box::new(|ws| format!("{:?}", ws.plan())))
        .await
        .unwrap();
    assert!(text.starts_with("(0,"), "not clean after update: {text}");

    // Changed outside Terraform: found, and put back.
    pools
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"weight": 50}})),
        )
        .await
        .unwrap();
    let text = run(Box::new(|ws| format!("{:?}", ws.plan())))
        .await
        .unwrap();
    assert!(
        text.starts_with("(2,") && text.contains("50 -> 10"),
        "drift not found: {text}"
    );
    run(Box::new(|ws| {
        ws.ok(&["apply", "-auto-approve", "-input=false"])
    }))
    .await
    .unwrap();
    assert_eq!(pools.get("default").await.unwrap().spec.weight, Some(10));

    // Deleted outside Terraform: recreated.
    pools
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let applied = run(Box::new(|ws| {
        ws.ok(&["apply", "-auto-approve", "-input=false"])
    }))
    .await
    .unwrap();
    assert!(applied.contains("1 added"), "{applied}");
    assert!(pools.get_opt("default").await.unwrap().is_some());

    // Import into an empty state: plans clean.
    run(Box::new(|ws| {
        ws.import_plans_clean("karpenter_nodepool.default", "default");
        String::new()
    }))
    .await
    .unwrap();

    // Invalid configuration: a plan-time error at the attribute.
    ws.write(&config(
        &kubeconfig,
        &updated.replace(r#"operator = "In""#, r#"operator = "Sometimes""#),
    ));
    let text = run(Box::new(|ws| format!("{:?}", ws.plan())))
        .await
        .unwrap();
    assert!(text.starts_with("(1,"), "{text}");
    assert!(text.contains("requirements[0].operator"), "{text}");
    assert!(
        text.contains(r#"operator = \"Sometimes\""#),
        "the error points at the line: {text}"
    );

    // The cluster's address unknown at plan time (as when the cluster is
    // created in the same run): the plan works without the cluster.
    let late = format!(
        "{updated}\n\nprovider \"karpenter\" {{\n  alias = \"late\"\n  host  = \"https://${{karpenter_nodepool.default.status_nodes}}.invalid\"\n}}\n\nresource \"karpenter_nodepool\" \"later\" {{\n  provider = karpenter.late\n  name     = \"later\"\n  template {{\n    spec {{\n      node_class_ref {{\n        group = \"karpenter.k8s.aws\"\n        kind  = \"EC2NodeClass\"\n        name  = \"default\"\n      }}\n    }}\n  }}\n}}\n"
    );
    ws.write(&config(&kubeconfig, &late));
    let text = run(Box::new(|ws| format!("{:?}", ws.plan())))
        .await
        .unwrap();
    assert!(
        text.starts_with("(2,") && text.contains("1 to add"),
        "{text}"
    );

    // Destroy, waiting for the pool's nodes: a NodeClaim of the pool holds
    // the destroy until it is gone (here removed by hand after 3 s).
    let waiting = updated.replace(
        "  weight = 10\n",
        "  weight = 10\n  wait_for_nodes_on_delete = true\n  delete_timeout = \"60s\"\n",
    );
    ws.write(&config(&kubeconfig, &waiting));
    run(Box::new(|ws| {
        ws.ok(&["apply", "-auto-approve", "-input=false"])
    }))
    .await
    .unwrap();
    let claims: Api<karpenter_api::v1::NodeClaim> = Api::all(sim.client());
    let claim = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": "default-abcde", "labels": {"karpenter.sh/nodepool": "default"}},
        "spec": {"requirements": [], "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}}
    }))
    .unwrap();
    claims.create(&Default::default(), &claim).await.unwrap();
    let mut destroy = run(Box::new(|ws| {
        ws.ok(&["destroy", "-auto-approve", "-input=false"])
    }));
    // The pool is deleted first; then the destroy waits on its NodeClaim.
    test_support::eventually("terraform destroy deleted the NodePool", || async {
        pools.get_opt("default").await.unwrap().is_none()
    })
    .await;
    // Two of the provider's polls (every 2 s) find the claim: still waiting.
    let early = tokio::time::timeout(std::time::Duration::from_secs(5), &mut destroy).await;
    assert!(
        early.is_err(),
        "destroy finished while a NodeClaim of the pool was left: {early:?}"
    );
    claims
        .delete("default-abcde", &DeleteParams::default())
        .await
        .unwrap();
    destroy.await.unwrap();
    assert!(pools.get_opt("default").await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(&ws.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodepool_lifecycle_with_terraform_1_0() {
    lifecycle(Part::Terraform1_0, "terraform 1.0 nodepool").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodepool_lifecycle_with_terraform_1_15() {
    lifecycle(Part::Terraform1_15, "terraform 1.15 nodepool").await;
}

const CLASS: &str = r#"resource "karpenter_ec2nodeclass" "default" {
  name = "default"
  role = "KarpenterNodeRole-demo"
  ami_selector_term {
    alias = "al2023@latest"
  }
  subnet_selector_term {
    tags = { "karpenter.sh/discovery" = "demo" }
  }
  security_group_selector_term {
    tags = { "karpenter.sh/discovery" = "demo" }
  }
  kubelet {
    max_pods = 110
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      volume_size = "40Gi"
      volume_type = "gp3"
      encrypted   = true
    }
  }
  tags = { team = "platform" }
}"#;

async fn nodeclass_lifecycle(part: Part, name: &str) {
    let env = DevEnv::load();
    let Some(terraform) = env.require(part, name) else {
        return;
    };
    let ws = Workspace::new(terraform, name);
    let (sim, served) = cluster(&ws.dir).await;
    let classes: Api<karpenter_api::v1::EC2NodeClass> = Api::all(sim.client());
    let kubeconfig = served.kubeconfig.clone();
    let blocking = |args: &'static [&'static str]| {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || ws.ok(args))
    };
    let plan = || {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || ws.plan())
    };

    ws.write(&config(&kubeconfig, CLASS));
    blocking(&["apply", "-auto-approve", "-input=false"])
        .await
        .unwrap();
    let created = classes.get("default").await.unwrap();
    assert_eq!(
        created
            .spec
            .metadata_options
            .as_ref()
            .unwrap()
            .http_tokens
            .as_deref(),
        Some("required"),
        "the server's defaults are there"
    );
    let (code, text) = plan().await.unwrap();
    assert_eq!(code, 0, "not clean after create: {text}");

    ws.write(&config(
        &kubeconfig,
        &CLASS.replace("team = \"platform\"", "team = \"data\""),
    ));
    let applied = blocking(&["apply", "-auto-approve", "-input=false"])
        .await
        .unwrap();
    assert!(
        applied.contains("0 added, 1 changed, 0 destroyed"),
        "{applied}"
    );
    assert_eq!(
        classes.get("default").await.unwrap().metadata.uid,
        created.metadata.uid
    );
    let (code, text) = plan().await.unwrap();
    assert_eq!(code, 0, "not clean after update: {text}");

    // Changed outside Terraform: put back; deleted: recreated.
    classes
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"userData": "echo hand-made"}})),
        )
        .await
        .unwrap();
    let (code, text) = plan().await.unwrap();
    assert_eq!(code, 2, "drift not found: {text}");
    blocking(&["apply", "-auto-approve", "-input=false"])
        .await
        .unwrap();
    assert_eq!(classes.get("default").await.unwrap().spec.user_data, None);
    classes
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let applied = blocking(&["apply", "-auto-approve", "-input=false"])
        .await
        .unwrap();
    assert!(applied.contains("1 added"), "{applied}");

    let importer = ws.clone();
    tokio::task::spawn_blocking(move || {
        importer.import_plans_clean("karpenter_ec2nodeclass.default", "default")
    })
    .await
    .unwrap();

    ws.write(&config(
        &kubeconfig,
        &CLASS.replace("al2023@latest", "nonsense"),
    ));
    let (code, text) = plan().await.unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("amiSelectorTerms[0].alias"), "{text}");

    ws.write(&config(&kubeconfig, CLASS));
    blocking(&["destroy", "-auto-approve", "-input=false"])
        .await
        .unwrap();
    assert!(classes.get_opt("default").await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(&ws.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2nodeclass_lifecycle_with_terraform_1_0() {
    nodeclass_lifecycle(Part::Terraform1_0, "terraform 1.0 nodeclass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2nodeclass_lifecycle_with_terraform_1_15() {
    nodeclass_lifecycle(Part::Terraform1_15, "terraform 1.15 nodeclass").await;
}

const DATA: &str = r#"data "karpenter_controller_policy" "this" {
  cluster_name  = "demo"
  region        = "us-east-1"
  account_id    = "123456789012"
  node_role_arn = "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo"
}

data "karpenter_instance_types" "small_arm" {
  requirement {
    key      = "kubernetes.io/arch"
    operator = "In"
    values   = ["arm64"]
  }
  requirement {
    key      = "karpenter.k8s.aws/instance-cpu"
    operator = "Lt"
    values   = ["3"]
  }
  max_results = 5
}

data "karpenter_nodepool" "default" {
  name       = karpenter_nodepool.default.name
  depends_on = [karpenter_nodepool.default]
}

output "policy" { value = data.karpenter_controller_policy.this.json }
output "types" { value = data.karpenter_instance_types.small_arm.instance_types }
output "pool_spec" { value = data.karpenter_nodepool.default.spec_json }
"#;

async fn data_sources(part: Part, name: &str) {
    let env = DevEnv::load();
    let Some(terraform) = env.require(part, name) else {
        return;
    };
    let ws = Workspace::new(terraform, name);
    let (_sim, served) = cluster(&ws.dir).await;
    ws.write(&config(&served.kubeconfig, &format!("{POOL}\n\n{DATA}")));
    let ws2 = ws.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        ws2.ok(&["apply", "-auto-approve", "-input=false"]);
        ws2.ok(&["output", "-json"])
    })
    .await
    .unwrap();
    let outputs: serde_json::Value = serde_json::from_str(&outputs).unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(outputs["policy"]["value"].as_str().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert!(
        statements
            .iter()
            .any(|s| s["Sid"] == "AllowPassingInstanceRole"),
        "{policy}"
    );
    let types = outputs["types"]["value"].as_array().unwrap();
    assert_eq!(types.len(), 5, "{types:?}");
    assert!(
        types
            .iter()
            .all(|t| t["architecture"] == "arm64" && t["vcpu"].as_i64().unwrap() < 3)
    );
    let prices: Vec<f64> = types
        .iter()
        .map(|t| t["on_demand_price"].as_f64().unwrap())
        .collect();
    assert!(
        prices.windows(2).all(|w| w[0] <= w[1]),
        "cheapest first: {prices:?}"
    );
    let spec: serde_json::Value =
        serde_json::from_str(outputs["pool_spec"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(spec["limits"]["cpu"], "1000");
    let _ = std::fs::remove_dir_all(&ws.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sources_with_terraform_1_0() {
    data_sources(Part::Terraform1_0, "terraform 1.0 data").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sources_with_terraform_1_15() {
    data_sources(Part::Terraform1_15, "terraform 1.15 data").await;
}

/// The provider block with `host`, `cluster_ca_certificate` and an `exec`
/// credential plugin (a script printing an ExecCredential with kubesim's
/// token), as an EKS configuration would use `aws eks get-token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_ca_and_exec_credentials_reach_the_cluster() {
    let env = DevEnv::load();
    let Some(terraform) = env.require(Part::Terraform1_15, "terraform exec credentials") else {
        return;
    };
    let ws = Workspace::new(terraform, "terraform exec credentials");
    let (sim, served) = cluster(&ws.dir).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(&served.kubeconfig).unwrap();
    let ca_base64 = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .certificate_authority_data
        .clone()
        .unwrap();
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_base64)
        .unwrap();
    std::fs::write(ws.dir.join("ca.pem"), &ca).unwrap();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": served.token},
    });
    std::fs::write(ws.dir.join("credential.json"), credential.to_string()).unwrap();
    let script = ws.dir.join("get-token.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat '{}'\n",
            ws.dir.join("credential.json").display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).unwrap();
    let config = format!(
        r#"terraform {{
  required_providers {{
    karpenter = {{ source = "karpenter-rs/karpenter" }}
  }}
}}

provider "karpenter" {{
  host                   = "{}"
  cluster_ca_certificate = file("{}")
  exec {{
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "{}"
  }}
}}

{POOL}
"#,
        served.url(),
        ws.dir.join("ca.pem").display(),
        script.display()
    );
    ws.write(&config);
    let ws2 = ws.clone();
    tokio::task::spawn_blocking(move || {
        ws2.ok(&["apply", "-auto-approve"]);
    })
    .await
    .unwrap();
    let pools: Api<karpenter_api::v1::NodePool> = Api::all(sim.client());
    assert!(pools.get_opt("default").await.unwrap().is_some());
    let ws2 = ws.clone();
    tokio::task::spawn_blocking(move || {
        ws2.ok(&["destroy", "-auto-approve"]);
    })
    .await
    .unwrap();
    assert!(pools.get_opt("default").await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(&ws.dir);
}

/// What `karpenter-bootstrap convert --output terraform` wrote for the old
/// manifests in `examples/migration/` (its tests keep the files current):
/// with the converted objects in the cluster, the `import` blocks adopt
/// every one of them and nothing else changes, and the next plan is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converted_manifests_import_and_plan_clean_with_terraform_1_15() {
    use serde::Deserialize;
    let env = DevEnv::load();
    let Some(terraform) = env.require(Part::Terraform1_15, "terraform converted import") else {
        return;
    };
    let converted = test_support::repo_path("examples/migration/converted");
    for input in ["v1alpha5-provisioner", "v1alpha5-full", "v1beta1"] {
        let ws = Workspace::new(terraform.clone(), &format!("converted {input}"));
        let (sim, served) = cluster(&ws.dir).await;
        let yaml = std::fs::read_to_string(converted.join(format!("{input}.yaml"))).unwrap();
        let mut objects = 0;
        for doc in serde_norway::Deserializer::from_str(&yaml) {
            let doc = serde_json::Value::deserialize(doc).unwrap();
            let params = PatchParams::apply("kubectl");
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            if doc["kind"] == "NodePool" {
                let pools: Api<karpenter_api::v1::NodePool> = Api::all(sim.client());
                pools
                    .patch(&name, &params, &Patch::Apply(&doc))
                    .await
                    .unwrap();
            } else {
                let classes: Api<karpenter_api::v1::EC2NodeClass> = Api::all(sim.client());
                classes
                    .patch(&name, &params, &Patch::Apply(&doc))
                    .await
                    .unwrap();
            }
            objects += 1;
        }
        let tf = std::fs::read_to_string(converted.join(format!("{input}.tf"))).unwrap();
        ws.write(&config(&served.kubeconfig, &tf));
        let ws2 = ws.clone();
        let applied = tokio::task::spawn_blocking(move || ws2.ok(&["apply", "-auto-approve"]))
            .await
            .unwrap();
        assert!(
            applied.contains(&format!(
                "Resources: {objects} imported, 0 added, 0 changed, 0 destroyed"
            )),
            "{input}: the import changed something:\n{applied}"
        );
        let ws2 = ws.clone();
        let (code, text) = tokio::task::spawn_blocking(move || ws2.plan())
            .await
            .unwrap();
        assert_eq!(code, 0, "{input}: not clean after the import:\n{text}");
        let _ = std::fs::remove_dir_all(&ws.dir);
    }
}
