//! `karpenter-bootstrap convert` on the old manifests in
//! `examples/migration/`: its YAML and Terraform output and its findings
//! equal the files in `examples/migration/converted/` (regenerate them with
//! `CONVERT_GOLDEN_WRITE=1`), every field upstream's migration guides map
//! is in the inputs, what v1 cannot express is reported with its path and
//! the exit code, and the output applies to a cluster with the v1 CRDs.
//! (`api/tests/examples.rs` runs the converted YAML through the Rust
//! validation and the CRDs' CEL rules; `provider/tests/terraform.rs` plans
//! the Terraform output clean against the objects.)

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The old manifests and the exit code `convert` gives each.
const INPUTS: &[(&str, i32)] = &[
    ("v1alpha5-provisioner", 2),
    ("v1alpha5-full", 2),
    ("v1beta1", 0),
];

fn migration_dir() -> PathBuf {
    test_support::repo_path("examples/migration")
}

/// Runs `convert` in `examples/migration` (so origins are file names).
fn convert(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .arg("convert")
        .args(args)
        .current_dir(migration_dir())
        .env_remove("CLUSTER_NAME")
        .output()
        .expect("karpenter-bootstrap runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Compares `actual` with the golden file, or rewrites it.
fn golden(name: &str, actual: &str) {
    let path = migration_dir().join("converted").join(name);
    if std::env::var_os("CONVERT_GOLDEN_WRITE").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CONVERT_GOLDEN_WRITE=1 writes it)", path.display()));
    pretty_assertions::assert_eq!(
        expected,
        actual,
        "{name} differs (CONVERT_GOLDEN_WRITE=1 rewrites it)"
    );
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// kubesim with the v1 CRDs applied (admission by their schemas and rules).
async fn cluster_with_v1_crds() -> (kubesim::Kubesim, Api<CustomResourceDefinition>) {
    let sim = kubesim::Kubesim::new();
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client());
    for (_, crd) in karpenter_api::crd::all() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    (sim, crds)
}

#[test]
fn yaml_terraform_and_findings_match_the_converted_examples() {
    for (input, code) in INPUTS {
        let file = format!("{input}.yaml");
        let (exit, yaml, findings) = convert(&[&file]);
        assert_eq!(exit, *code, "{input}: exit code\n{findings}");
        golden(&format!("{input}.yaml"), &yaml);
        golden(&format!("{input}.findings.txt"), &findings);
        let (exit, terraform, _) = convert(&["--output", "terraform", &file]);
        assert_eq!(exit, *code, "{input}: exit code with --output terraform");
        golden(&format!("{input}.tf"), &terraform);
    }
}

#[test]
fn the_introductions_provisioner_keeps_its_instance_types_and_cpu_limit() {
    let (exit, yaml, findings) = convert(&["--cluster-name", "prod", "v1alpha5-provisioner.yaml"]);
    assert_eq!(exit, 2, "the stub's role needs a decision:\n{findings}");
    let docs = documents(&yaml);
    let pool = docs.iter().find(|d| d["kind"] == "NodePool").unwrap();
    let requirements = pool["spec"]["template"]["spec"]["requirements"]
        .as_array()
        .unwrap();
    let types = requirements
        .iter()
        .find(|r| r["key"] == "node.kubernetes.io/instance-type")
        .unwrap();
    assert_eq!(
        types["values"],
        serde_json::json!(["m5.large", "m5.xlarge"])
    );
    assert_eq!(pool["spec"]["limits"]["cpu"], "1000");
    assert_eq!(
        pool["spec"]["template"]["spec"]["nodeClassRef"]["name"],
        "default"
    );
    let class = docs.iter().find(|d| d["kind"] == "EC2NodeClass").unwrap();
    assert_eq!(class["spec"]["role"], "KarpenterNodeRole-prod");
    assert_eq!(
        class["spec"]["amiSelectorTerms"][0]["alias"],
        "al2023@latest"
    );
    assert_eq!(
        class["spec"]["subnetSelectorTerms"][0]["tags"]["karpenter.sh/discovery"],
        "prod"
    );
    for choice in [
        "spec.role",
        "the AWSNodeTemplate it names is not in the input",
    ] {
        assert!(findings.contains(choice), "{choice} missing:\n{findings}");
    }
    // The same from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"))
        .args(["convert", "--cluster-name", "prod", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read_to_string(migration_dir().join("v1alpha5-provisioner.yaml")).unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(documents(&String::from_utf8(out.stdout).unwrap()), docs);
}

#[test]
fn every_mapped_field_is_in_the_inputs_and_what_v1_lacks_is_reported() {
    let inputs: String = INPUTS
        .iter()
        .map(|(name, _)| {
            std::fs::read_to_string(migration_dir().join(format!("{name}.yaml"))).unwrap()
        })
        .collect();
    // The fields of upstream's v1beta1 and v1 migration guides.
    for field in [
        "providerRef:",
        "provider:",
        "ttlSecondsAfterEmpty:",
        "consolidation:",
        "ttlSecondsUntilExpired:",
        "kubeletConfiguration:",
        "clusterDNS:",
        "maxPods:",
        "podsPerCore:",
        "systemReserved:",
        "kubeReserved:",
        "evictionHard:",
        "evictionSoft:",
        "evictionSoftGracePeriod:",
        "evictionMaxPodGracePeriod:",
        "imageGCHighThresholdPercent:",
        "imageGCLowThresholdPercent:",
        "cpuCFSQuota:",
        "taints:",
        "startupTaints:",
        "labels:",
        "annotations:",
        "limits:",
        "weight:",
        "amiFamily:",
        "amiSelector:",
        "instanceProfile:",
        "role:",
        "securityGroupSelector:",
        "subnetSelector:",
        "tags:",
        "blockDeviceMappings:",
        "metadataOptions:",
        "userData:",
        "detailedMonitoring:",
        "aws::ids:",
        "aws-ids:",
        "aws::name:",
        "aws::owners:",
        "consolidationPolicy: WhenUnderutilized",
        "expireAfter:",
        "budgets:",
        "nodeClassRef:",
        "minValues:",
        "kubelet:",
        "associatePublicIPAddress:",
        "instanceStorePolicy:",
        "kind: NodeClaim",
        "kind: List",
    ] {
        assert!(inputs.contains(field), "no input exercises {field}");
    }
    let (_, _, findings) = convert(&["v1alpha5-full.yaml"]);
    for unconvertible in [
        "action: v1alpha1 AWSNodeTemplate legacy (v1alpha5-full.yaml): spec.launchTemplate:",
        "action: v1alpha1 AWSNodeTemplate legacy (v1alpha5-full.yaml): spec.amiFamily: v1 has no Ubuntu family",
        "action: v1alpha1 AWSNodeTemplate legacy (v1alpha5-full.yaml): spec.spotAllocationStrategy: has no v1 equivalent",
        "action: v1alpha5 Provisioner legacy (v1alpha5-full.yaml): spec.kubeletConfiguration.containerRuntime: \"dockerd\"",
    ] {
        assert!(
            findings.contains(unconvertible),
            "{unconvertible} missing:\n{findings}"
        );
    }
    let (exit, _, stderr) = convert(&["missing.yaml"]);
    assert_eq!(exit, 1);
    assert!(stderr.contains("missing.yaml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_converted_objects_apply_to_a_cluster_with_the_v1_crds() {
    let (sim, _) = cluster_with_v1_crds().await;
    let mut applied = 0;
    for (input, _) in INPUTS {
        let text = std::fs::read_to_string(
            migration_dir()
                .join("converted")
                .join(format!("{input}.yaml")),
        )
        .unwrap();
        for doc in documents(&text) {
            let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
            let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
            let kind = doc["kind"].as_str().unwrap();
            let resource = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: doc["apiVersion"].as_str().unwrap().into(),
                kind: kind.into(),
                plural: match kind {
                    "EC2NodeClass" => "ec2nodeclasses".into(),
                    _ => format!("{}s", kind.to_lowercase()),
                },
            };
            let api: Api<DynamicObject> = Api::all_with(sim.client(), &resource);
            let name = object.metadata.name.clone().unwrap();
            // Names repeat across the inputs (each is converted on its own).
            let _ = api.delete(&name, &Default::default()).await;
            api.patch(
                &name,
                &PatchParams::apply("convert-test"),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("{input}: {kind} {name} refused: {e}"));
            applied += 1;
        }
    }
    assert_eq!(applied, 2 + 8 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_still_storing_v1beta1_is_reported_with_the_convert_command() {
    let (sim, crds) = cluster_with_v1_crds().await;
    let client = sim.client();
    assert_eq!(
        karpenter_bootstrap::cluster::leftovers::find(&client)
            .await
            .unwrap(),
        vec![]
    );
    // What a cluster upgraded from upstream v1.0 (v1beta1 and v1 served) records.
    crds.patch_status(
        "nodepools.karpenter.sh",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"storedVersions": ["v1beta1", "v1"]}})),
    )
    .await
    .unwrap();
    let found = karpenter_bootstrap::cluster::leftovers::find(&client)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].resource, "nodepools.karpenter.sh");
    assert_eq!(found[0].found, "objects may still be stored as v1beta1");
    assert!(
        found[0].hint.contains(
            "kubectl get nodepools.v1beta1.karpenter.sh -o yaml | karpenter-bootstrap convert -"
        ),
        "{}",
        found[0].hint
    );
}
