//! Terraform benchmark (a program that prints a table; not a test): wall
//! time of `terraform apply` creating 50 NodePools, of a clean re-plan
//! (50 reads), and of a plan and apply after one pool changed, with
//! Terraform 1.0.3 and 1.15 against kubesim served over TLS on this machine.
//!
//! Run: `cargo bench -p terraform-provider-karpenter --bench terraform`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Workspace, cluster};
use std::path::Path;
use std::time::Instant;
use test_support::{DevEnv, Part};

const POOLS: usize = 50;

fn pools(kubeconfig: &Path, changed: Option<usize>) -> String {
    let mut config = String::new();
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
    common::config(Some(kubeconfig), None, &config)
}

/// Wall seconds of one Terraform command (which must succeed; a plan may
/// report changes).
fn timed(ws: &Workspace, args: &[&str]) -> f64 {
    let began = Instant::now();
    let (code, text) = ws.run(args);
    let took = began.elapsed().as_secs_f64();
    assert!(
        code == 0 || (code == 2 && args.contains(&"-detailed-exitcode")),
        "terraform {args:?}: {text}"
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
    for (label, part) in [("1.0.3", Part::Terraform1_0), ("1.15", Part::Terraform1_15)] {
        let Some(bin) = env.path(part) else {
            eprintln!("{label}: not installed (run scripts/dev-env)");
            continue;
        };
        let ws = Workspace::new(bin, &format!("bench-{label}"));
        let (_sim, served) = cluster(&ws.dir).await;
        let kubeconfig = served.kubeconfig.clone();
        let dir = ws.dir.clone();
        let row = tokio::task::spawn_blocking(move || {
            ws.write(&pools(&kubeconfig, None));
            let create = timed(&ws, &["apply", "-auto-approve"]);
            let clean = timed(&ws, &["plan", "-detailed-exitcode"]);
            ws.write(&pools(&kubeconfig, Some(7)));
            let changed = timed(&ws, &["plan", "-detailed-exitcode"]);
            let update = timed(&ws, &["apply", "-auto-approve"]);
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
