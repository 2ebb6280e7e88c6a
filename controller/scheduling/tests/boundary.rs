//! The engine's purity is a boundary, not a convention: its dependency tree
//! (normal dependencies, as `cargo tree` resolves them) holds no async
//! runtime, Kubernetes client or AWS SDK. `kube` itself may appear only
//! through `karpenter-api`'s derive macros (the CRD types), never as a
//! dependency of the engine's own.

use std::process::Command;

/// Crates the engine must never link: a runtime, an HTTP stack, a client, a cloud.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "hyper",
    "reqwest",
    "tower",
    "kube-client",
    "kube-runtime",
    "aws-config",
    "aws-sdk-ec2",
    "aws-smithy-runtime",
];

fn tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "karpenter-scheduling",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn the_engine_links_no_runtime_client_or_cloud() {
    let all = tree(&[]);
    let found: Vec<&str> = names(&all)
        .into_iter()
        .filter(|name| FORBIDDEN.contains(name))
        .collect();
    assert!(
        found.is_empty(),
        "the scheduling engine links {found:?}:\n{all}"
    );
}

#[test]
fn the_engine_depends_on_types_only() {
    let direct = tree(&["--depth", "1"]);
    let mut names = names(&direct);
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names,
        [
            "k8s-openapi",
            "karpenter-api",
            "karpenter-catalog",
            "karpenter-scheduling",
            "thiserror"
        ],
        "a new direct dependency of the engine: keep it free of I/O"
    );
}
