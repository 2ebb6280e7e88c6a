//! The engine's purity is a boundary, not a convention: its dependency tree
//! (normal dependencies, as `cargo tree` resolves them) holds no async
//! runtime, HTTP stack, Kubernetes client or AWS SDK. `kube` appears only
//! through `karpenter-api`'s derive macros (the CRD types).

use test_support::deps::normal_dependencies;

/// Crates the engine must never link.
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

#[test]
fn the_engine_links_no_runtime_client_or_cloud() {
    let all = normal_dependencies("karpenter-scheduling", &[]);
    let found: Vec<&String> = all
        .iter()
        .filter(|name| FORBIDDEN.contains(&name.as_str()))
        .collect();
    assert!(found.is_empty(), "the scheduling engine links {found:?}");
}

#[test]
fn the_engine_depends_on_types_only() {
    assert_eq!(
        normal_dependencies("karpenter-scheduling", &["--depth", "1"]),
        [
            "k8s-openapi",
            "karpenter-api",
            "karpenter-catalog",
            "karpenter-scheduling",
            "microlp",
            "thiserror"
        ],
        "a new direct dependency of the engine: keep it free of I/O"
    );
}
