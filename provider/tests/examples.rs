//! Every configuration in `examples/terraform/` and the module in
//! `terraform/karpenter` (through `examples/terraform/module*`) applies,
//! re-plans clean and destroys cleanly, with Terraform 1.0.3 and 1.15,
//! against kubesim served over TLS and moto (the IAM roles). Variables go
//! in as `TF_VAR_*`, which examples that do not declare them ignore.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::path::Path;
use std::process::Command;
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

fn terraform(
    bin: &Path,
    dir: &Path,
    rc: &Path,
    vars: &[(String, String)],
    args: &[&str],
) -> (i32, String) {
    let out = Command::new(bin)
        .args(args)
        .arg("-no-color")
        .current_dir(dir)
        .envs(vars.iter().map(|(k, v)| (format!("TF_VAR_{k}"), v.clone())))
        .env("TF_CLI_CONFIG_FILE", rc)
        .env("CHECKPOINT_DISABLE", "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("terraform runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
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
    let root = std::env::temp_dir().join(format!(
        "tf-examples-{}-{}",
        std::process::id(),
        name.replace(' ', "-")
    ));
    let _ = std::fs::remove_dir_all(&root);
    copy_tree(
        &repo_path("examples/terraform"),
        &root.join("examples/terraform"),
    );
    copy_tree(&repo_path("terraform"), &root.join("terraform"));
    let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-karpenter"))
        .parent()
        .unwrap();
    let rc = root.join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"karpenter-rs/karpenter\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        ),
    )
    .unwrap();

    let sim = kubesim::Kubesim::new();
    let served = sim
        .serve(kubesim::ServeOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            kubeconfig: root.join("kubeconfig"),
        })
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client());
    for (_, crd) in karpenter_api::crd::all() {
        let crd_name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &crd_name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let vars = vec![
        (
            "kubeconfig".to_string(),
            served.kubeconfig.display().to_string(),
        ),
        ("aws_endpoint_url".to_string(), moto.endpoint()),
    ];
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("examples/terraform"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 4, "{dirs:?}");
    let pools: Api<karpenter_api::v1::NodePool> = Api::all(sim.client());
    for dir in dirs {
        let (bin, rc, vars) = (bin.clone(), rc.clone(), vars.clone());
        let example = dir.file_name().unwrap().to_string_lossy().to_string();
        tokio::task::spawn_blocking(move || {
            let run = |args: &[&str]| terraform(&bin, &dir, &rc, &vars, args);
            let (code, text) = run(&["get"]);
            assert_eq!(code, 0, "{example}: get: {text}");
            let (code, text) = run(&["apply", "-auto-approve", "-input=false"]);
            assert_eq!(code, 0, "{example}: apply: {text}");
            let (code, text) = run(&["plan", "-detailed-exitcode", "-input=false"]);
            assert_eq!(code, 0, "{example}: not clean after apply: {text}");
            let (code, text) = run(&["destroy", "-auto-approve", "-input=false"]);
            assert_eq!(code, 0, "{example}: destroy: {text}");
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
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_module_with_terraform_1_0() {
    examples(Part::Terraform1_0, "terraform 1.0 examples").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_module_with_terraform_1_15() {
    examples(Part::Terraform1_15, "terraform 1.15 examples").await;
}
