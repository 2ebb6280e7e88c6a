//! Every configuration in `examples/terraform/` and the module in
//! `terraform/karpenter` (through `examples/terraform/module*`) applies,
//! re-plans clean and destroys cleanly, with Terraform 1.0.3 and 1.15,
//! against kubesim served over TLS and moto (the IAM roles). Variables go
//! in as `TF_VAR_*`, which examples that do not declare them ignore.

mod common;

use common::{Workspace, cluster};
use kube::Api;
use std::path::Path;
use test_support::{DevEnv, MotoServer, Part, repo_path};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

async fn examples(part: Part, name: &str) {
    let env = DevEnv::load();
    let Some(bin) = env.require(part, name) else {
        return;
    };
    if env.require(Part::MotoServer, name).is_none() {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let root = Workspace::new(bin, name);
    copy_tree(
        &repo_path("examples/terraform"),
        &root.dir.join("examples/terraform"),
    );
    copy_tree(&repo_path("terraform"), &root.dir.join("terraform"));
    let (sim, served) = cluster(&root.dir).await;
    let root = root
        .with_env(
            "TF_VAR_kubeconfig",
            &served.kubeconfig.display().to_string(),
        )
        .with_env("TF_VAR_aws_endpoint_url", &moto.endpoint());
    let mut dirs: Vec<_> = std::fs::read_dir(root.dir.join("examples/terraform"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 4, "{dirs:?}");
    let pools: Api<karpenter_api::v1::NodePool> = Api::all(sim.client());
    for dir in dirs {
        let example = dir.file_name().unwrap().to_string_lossy().to_string();
        let ws = root.in_dir(dir);
        tokio::task::spawn_blocking(move || {
            ws.ok(&["get"]);
            ws.ok(&["apply", "-auto-approve"]);
            let (code, text) = ws.plan();
            assert_eq!(code, 0, "{example}: not clean after apply: {text}");
            ws.ok(&["destroy", "-auto-approve"]);
        })
        .await
        .unwrap();
        assert!(
            pools
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
    let iam = aws_sdk_iam::Client::new(&test_support::aws::sdk_config(&moto.endpoint()).await);
    let roles = iam.list_roles().send().await.unwrap();
    assert!(
        roles
            .roles()
            .iter()
            .all(|r| !r.role_name().starts_with("Karpenter")),
        "the module's roles are destroyed too"
    );
    let _ = std::fs::remove_dir_all(&root.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_module_with_terraform_1_0() {
    examples(Part::Terraform1_0, "terraform 1.0 examples").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_module_with_terraform_1_15() {
    examples(Part::Terraform1_15, "terraform 1.15 examples").await;
}

#[test]
fn version_names_the_crate_version_and_revision() {
    test_support::version::assert_version(
        env!("CARGO_BIN_EXE_terraform-provider-karpenter"),
        "terraform-provider-karpenter",
    );
}
