//! The user data we generate against upstream Karpenter v1.14.1's own golden
//! files (`../shared/upstream-v1.14.1/userdata/`), with the inputs upstream's
//! launch-template tests use: cluster `test-cluster` at `https://test-cluster`,
//! CA `Y2EtYnVuZGxlCg==`, service CIDR `10.100.0.0/16`, kube-dns `10.0.100.10`,
//! a NodePool labelled `testing/cluster: unspecified`, on-demand, `maxPods: 110`
//! (and for Bottlerocket the taint `foo=bar:NoExecute` and start-up taint
//! `baz=bin:NoExecute`). Upstream's test compares with line breaks removed
//! (`ExpectLaunchTemplatesCreatedWithUserData`); so does this one, and it
//! also requires the same number of lines (so only blank lines may differ).

use k8s_openapi::api::core::v1::Taint;
use karpenter_api::v1::{EC2NodeClass, KubeletConfiguration, NodeClaim};
use karpenter_controller::userdata::{AmiFamily, ClusterInfo, NodeBootstrap, render};
use serde_json::json;
use std::path::{Path, PathBuf};

const NODE_CLASS: &str = "default";
const NODE_POOL: &str = "default";
const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";

fn cluster() -> ClusterInfo {
    ClusterInfo {
        name: "test-cluster".into(),
        endpoint: "https://test-cluster".into(),
        ca_bundle: "Y2EtYnVuZGxlCg==".into(),
        cidr: Some("10.100.0.0/16".into()),
        dns_ip: Some("10.0.100.10".into()),
    }
}

/// Go's `fmt.Sprintf` for the golden files: `%s` in turn, `%%` as `%`.
fn sprintf(template: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('s') => out.push_str(args.next().expect("an argument per %s")),
                Some('%') => out.push('%'),
                other => panic!("unexpected verb %{other:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn golden(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn class(alias: &str, user_data: Option<String>) -> EC2NodeClass {
    let mut class: EC2NodeClass = serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS},
        "spec": {
            "role": "KarpenterNodeRole",
            "amiSelectorTerms": [{"alias": alias}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test-cluster"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test-cluster"}}],
        }
    }))
    .unwrap();
    class.spec.user_data = user_data;
    class.spec.kubelet = Some(KubeletConfiguration {
        max_pods: Some(110),
        ..Default::default()
    });
    class
}

fn taint(key: &str, value: &str) -> Taint {
    Taint {
        key: key.into(),
        value: Some(value.into()),
        effect: "NoExecute".into(),
        time_added: None,
    }
}

fn claim(with_taints: bool) -> NodeClaim {
    let mut claim: NodeClaim = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": "default-abcde", "labels": {
            NODEPOOL_LABEL: NODE_POOL, "testing/cluster": "unspecified"}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
            "requirements": [],
        }
    }))
    .unwrap();
    if with_taints {
        claim.spec.template.taints = Some(vec![taint("foo", "bar")]);
        claim.spec.template.startup_taints = Some(vec![taint("baz", "bin")]);
    }
    claim
}

fn generated(family_alias: &str, user: Option<String>, taints: bool) -> String {
    let class = class(family_alias, user.clone());
    let node = NodeBootstrap::for_claim(&claim(taints), &class, "on-demand", 110);
    render(AmiFamily::of(&class), &cluster(), &node, user.as_deref())
        .unwrap_or_else(|e| panic!("{family_alias}: {e}"))
}

/// Upstream's comparison (line breaks removed), plus the same lines once blank ones are dropped.
fn assert_matches(case: &str, ours: &str, upstream: &str) {
    if std::env::var("SHOW_USERDATA").is_ok() {
        eprintln!("=== {case}\n{ours}");
    }
    let flat = |s: &str| s.replace('\n', "");
    let lines = |s: &str| {
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(ours),
        lines(upstream),
        "{case}: lines differ\n--- ours\n{ours}\n--- upstream\n{upstream}"
    );
    assert_eq!(flat(ours), flat(upstream), "{case}");
}

fn golden_dir() -> Option<PathBuf> {
    test_support::shared_path("upstream-v1.14.1/userdata", "userdata_golden")
}

#[test]
fn al2023_matches_upstreams_golden_files() {
    let Some(dir) = golden_dir() else { return };
    for (input, merged) in [
        (
            Some("al2023_mime_userdata_input.golden"),
            "al2023_mime_userdata_merged.golden",
        ),
        (
            Some("al2023_yaml_userdata_input.golden"),
            "al2023_yaml_userdata_merged.golden",
        ),
        (
            Some("al2023_shell_userdata_input.golden"),
            "al2023_shell_userdata_merged.golden",
        ),
        (None, "al2023_userdata_unmerged.golden"),
    ] {
        let user = input.map(|f| golden(&dir, f));
        let ours = generated("al2023@latest", user, false);
        let upstream = sprintf(
            &golden(&dir, merged),
            &[NODE_CLASS, NODEPOOL_LABEL, NODE_POOL],
        );
        assert_matches(merged, &ours, &upstream);
    }
}

#[test]
fn al2_matches_upstreams_golden_files() {
    let Some(dir) = golden_dir() else { return };
    for (input, merged) in [
        (
            Some("al2_userdata_input.golden"),
            "al2_userdata_merged.golden",
        ),
        (
            Some("al2_userdata_content_type_first_input.golden"),
            "al2_userdata_merged.golden",
        ),
        (
            Some("al2_no_mime_userdata_input.golden"),
            "al2_userdata_merged.golden",
        ),
        (None, "al2_userdata_unmerged.golden"),
    ] {
        let user = input.map(|f| golden(&dir, f));
        let ours = generated("al2@latest", user, false);
        let upstream = sprintf(
            &golden(&dir, merged),
            &[NODE_CLASS, NODEPOOL_LABEL, NODE_POOL],
        );
        assert_matches(&format!("{input:?} -> {merged}"), &ours, &upstream);
    }
}

#[test]
fn bottlerocket_matches_upstreams_golden_files() {
    let Some(dir) = golden_dir() else { return };
    let input = sprintf(&golden(&dir, "br_userdata_input.golden"), &[NODEPOOL_LABEL]);
    for (user, merged) in [
        (Some(input), "br_userdata_merged.golden"),
        (None, "br_userdata_unmerged.golden"),
    ] {
        let ours = generated("bottlerocket@latest", user, true);
        let upstream = sprintf(
            &golden(&dir, merged),
            &[NODE_CLASS, NODEPOOL_LABEL, NODE_POOL],
        );
        assert_matches(merged, &ours, &upstream);
    }
}
