//! The `karpenter-bootstrap` binary against moto: `plan` lists everything
//! on an empty account and changes nothing, `apply` creates it, and a
//! second `apply` reports every resource unchanged with no mutating call;
//! a bad credential fails with a message that says what to check.

use serde_json::Value;
use std::process::Command;
use test_support::{DevEnv, MotoServer, Part};

fn bootstrap(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("run karpenter-bootstrap")
}

fn json(endpoint: &str, command: &str) -> Value {
    let out = bootstrap(
        endpoint,
        &[command, "--cluster-name", "demo", "--output", "json"],
    );
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn actions(report: &Value) -> Vec<&str> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect()
}

#[test]
fn plan_apply_and_a_second_apply_that_changes_nothing() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "bootstrap cli").is_none() {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();

    let plan = json(&endpoint, "plan");
    assert_eq!(plan["account"], "123456789012");
    assert_eq!(actions(&plan), ["create"; 8]);
    assert_eq!(plan["calls"]["writes"], 0);

    let apply = json(&endpoint, "apply");
    assert_eq!(actions(&apply), ["create"; 8]);

    let again = json(&endpoint, "apply");
    assert_eq!(actions(&again), ["unchanged"; 8]);
    assert_eq!(again["calls"]["writes"], 0);

    let text = bootstrap(&endpoint, &["plan", "--cluster-name", "demo"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("  sqs-queue Karpenter-demo\n"), "{text}");
    assert!(text.contains("of them changes"), "{text}");

    let unreachable = bootstrap("http://127.0.0.1:1", &["plan", "--cluster-name", "demo"]);
    assert!(!unreachable.status.success());
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("sts:GetCallerIdentity failed"), "{stderr}");
}
