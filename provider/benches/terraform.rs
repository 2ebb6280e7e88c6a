//! Terraform benchmark (a program that prints a table; not a test): wall
//! time of `terraform apply` creating 50 NodePools, of a clean re-plan
//! (50 reads), and of a plan and apply after one pool changed, with
//! Terraform 1.0.3 and 1.15 against kubesim served over TLS on this machine.
//!
//! Run: `cargo bench -p terraform-provider-karpenter --bench terraform`

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use test_support::{DevEnv, Part};

const POOLS: usize = 50;

fn pools(kubeconfig: &Path, changed: Option<usize>) -> String {
    let mut config = format!(
        "terraform {{\n  required_providers {{\n    karpenter = {{ source = \"karpenter-rs/karpenter\" }}\n  }}\n}}\n\nprovider \"karpenter\" {{\n  config_path = \"{}\"\n}}\n",
        kubeconfig.display()
    );
    for i in 0..POOLS {
        let cpu = if changed == Some(i) { 2000 } else { 1000 };
        config.push_str(&format!(
            r#"
resource "karpenter_nodepool" "pool{i}" {{
  name = "pool-{i}"
  template {{
    spec {{
      node_class_ref {{
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = "default"
      }}
      requirement {{
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["spot", "on-demand"]
      }}
    }}
  }}
  disruption {{
    consolidate_after = "1m"
  }}
  limits = {{ cpu = "{cpu}" }}
}}
"#
        ));
    }
    config
}

fn terraform(bin: &Path, dir: &Path, rc: &Path, args: &[&str]) -> f64 {
    let began = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .args(["-no-color", "-input=false"])
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", rc)
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform runs");
    let took = began.elapsed().as_secs_f64();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || (code == 2 && args.contains(&"-detailed-exitcode")),
        "terraform {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

#[tokio::main]
async fn main() {
    let env = DevEnv::load();
    println!(
        "== terraform-provider-karpenter: {POOLS} NodePools against kubesim (TLS), wall seconds"
    );
    println!(
        "{:<16} | {:>12} | {:>11} | {:>16} | {:>16}",
        "terraform", "apply (create)", "plan (clean)", "plan (1 changed)", "apply (1 changed)"
    );
    let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-karpenter"))
        .parent()
        .unwrap()
        .to_path_buf();
    for (label, part) in [("1.0.3", Part::Terraform1_0), ("1.15", Part::Terraform1_15)] {
        let Some(bin) = env.path(part) else {
            eprintln!("{label}: not installed (run scripts/dev-env)");
            continue;
        };
        let dir: PathBuf =
            std::env::temp_dir().join(format!("tf-bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rc = dir.join("terraformrc");
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
                kubeconfig: dir.join("kubeconfig"),
            })
            .await
            .unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(sim.client());
        for (_, crd) in karpenter_api::crd::all() {
            let name = crd.metadata.name.clone().unwrap();
            crds.patch(
                &name,
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
        }
        let kubeconfig = served.kubeconfig.clone();
        let (bin2, dir2, rc2) = (bin.clone(), dir.clone(), rc.clone());
        let row = tokio::task::spawn_blocking(move || {
            let (bin, dir, rc) = (bin2, dir2, rc2);
            std::fs::write(dir.join("main.tf"), pools(&kubeconfig, None)).unwrap();
            let create = terraform(&bin, &dir, &rc, &["apply", "-auto-approve"]);
            let clean = terraform(&bin, &dir, &rc, &["plan", "-detailed-exitcode"]);
            std::fs::write(dir.join("main.tf"), pools(&kubeconfig, Some(7))).unwrap();
            let changed = terraform(&bin, &dir, &rc, &["plan", "-detailed-exitcode"]);
            let update = terraform(&bin, &dir, &rc, &["apply", "-auto-approve"]);
            (create, clean, changed, update)
        })
        .await
        .unwrap();
        println!(
            "{:<16} | {:>14.2} | {:>12.2} | {:>16.2} | {:>17.2}",
            label, row.0, row.1, row.2, row.3
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
