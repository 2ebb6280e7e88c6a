//! Where the binary's inputs come from: `--from-terraform` reads a real
//! Terraform 1.0.3 state's outputs, `--config` a YAML file, and flags win
//! over both; the plan (against moto) shows which cluster, roles and
//! identity they chose.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use test_support::{DevEnv, MotoServer, Part};

fn plan(endpoint: &str, terraform: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .arg("plan")
        .args(args)
        .args(["--aws-only", "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TERRAFORM", terraform)
        .output()
        .expect("run karpenter-bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources(report: &Value) -> Vec<String> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_string())
        .collect()
}

/// A Terraform configuration with only outputs, applied with the real binary.
fn terraform_state(terraform: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        r#"
output "cluster_name" { value = "tfdemo" }
output "region" { value = "us-east-1" }
output "cluster_endpoint" { value = "https://TFDEMO.gr7.us-east-1.eks.amazonaws.com" }
output "cluster_oidc_issuer_url" { value = "https://oidc.eks.us-east-1.amazonaws.com/id/TFDEMO" }
output "node_iam_role_arn" { value = "arn:aws:iam::123456789012:role/tf-managed-nodes" }
"#,
    )
    .unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ] {
        let out = Command::new(terraform)
            .args(args)
            .current_dir(dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn terraform_outputs_a_config_file_and_flags_combine() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "bootstrap inputs").is_none() {
        return;
    }
    let Some(terraform) = env.require(Part::Terraform1_0, "bootstrap inputs") else {
        return;
    };
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    let dir = std::env::temp_dir().join(format!("bootstrap-inputs-{}", std::process::id()));
    terraform_state(&terraform, &dir.join("tf"));

    // Terraform alone: its cluster, region, node role and issuer (so IRSA).
    let dir_arg = dir.join("tf").to_string_lossy().to_string();
    let from_tf = plan(&endpoint, &terraform, &["--from-terraform", &dir_arg]);
    assert_eq!(from_tf["cluster"], "tfdemo");
    assert_eq!(
        from_tf["region"], "us-east-1",
        "the output beats AWS_REGION"
    );
    let names = resources(&from_tf);
    assert!(
        names.contains(&"sqs-queue Karpenter-tfdemo".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"iam-role tf-managed-nodes".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"iam-oidc-provider oidc.eks.us-east-1.amazonaws.com/id/TFDEMO".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("eks-pod-identity")),
        "{names:?}"
    );

    // A config file wins over Terraform; a flag wins over both.
    let config = dir.join("bootstrap.yaml");
    std::fs::write(
        &config,
        "cluster-name: fromfile\ncontroller-role-name: platform-karpenter\n",
    )
    .unwrap();
    let config_arg = config.to_string_lossy().to_string();
    let from_file = plan(
        &endpoint,
        &terraform,
        &["--config", &config_arg, "--from-terraform", &dir_arg],
    );
    assert_eq!(from_file["cluster"], "fromfile");
    let names = resources(&from_file);
    assert!(
        names.contains(&"iam-role platform-karpenter".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"iam-role tf-managed-nodes".to_string()),
        "{names:?}"
    );
    // (With Pod Identity, even a plan asks EKS about the cluster, which
    // does not exist: the error says so and what to check.)
    let from_flag = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["plan", "--aws-only", "--config", &config_arg])
        .args(["--cluster-name", "fromflag"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&from_flag.stderr);
    assert!(
        stderr.contains("No cluster found for name: fromflag"),
        "{stderr}"
    );
    assert!(
        stderr.contains("check the cluster name and the region"),
        "{stderr}"
    );

    // Mistakes name what to fix.
    std::fs::write(&config, "cluster-name: x\nregoin: us-east-1\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["plan", "--aws-only", "--config", &config_arg])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown field `regoin`"), "{stderr}");
    let missing = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["plan", "--aws-only"])
        .env_remove("CLUSTER_NAME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no cluster name"), "{stderr}");
    // Values that do not keep the chart's shape are refused by path, with
    // an IRSA identity too (it writes into values.serviceAccount).
    std::fs::write(
        &config,
        "cluster-name: x\nvalues:\n  serviceAccount: karpenter\n",
    )
    .unwrap();
    let shape = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["plan", "--aws-only", "--config", &config_arg])
        .args([
            "--oidc-issuer",
            "https://oidc.eks.us-east-1.amazonaws.com/id/X",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert!(!shape.status.success());
    let stderr = String::from_utf8_lossy(&shape.stderr);
    assert!(
        stderr.contains("values.serviceAccount: must be a mapping, got a string")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
