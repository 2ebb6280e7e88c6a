//! One manifest per upstream CEL rule (`examples/invalid/rules/`), each
//! refused three ways: by `karpenter_api::validation` (the provider and the
//! controller), by the generated CRDs' CEL rules as `kube-cel` evaluates
//! them, and by kubesim's CRD-driven admission (what `kubectl apply` meets).
//!
//! Each file says what it expects:
//! - `# cel: <rule path>: <message>`: the CRD rules it breaks (paths with
//!   `[]` for list items), exactly;
//! - `# expect: <field path>: <rule>`: the Rust validation's errors, exactly.
//!
//! NodeOverlay and CapacityBuffer files have no `# expect:` lines: only
//! their CRDs validate them.
//!
//! A file with two objects stores the first and updates it to the second
//! (transition rules). Together the files cover every rule of the CRDs.

mod common;

use karpenter_api::v1::{EC2NodeClass, NodeClaim, NodePool};
use karpenter_api::{crd, validation};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubesim::Kubesim;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// Kinds stored but never read by the controller (their feature gates are
/// not supported): only their CRDs validate them, so no `# expect:` lines.
const CRD_ONLY: &[&str] = &["NodeOverlay", "CapacityBuffer"];

struct Example {
    file: String,
    docs: Vec<Value>,
    cel: BTreeSet<String>,
    expect: BTreeSet<String>,
}

fn examples() -> Vec<Example> {
    let dir = test_support::repo_path("examples/invalid/rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = |prefix: &str| -> BTreeSet<String> {
                text.lines()
                    .filter_map(|l| l.strip_prefix(prefix))
                    .map(str::to_string)
                    .collect()
            };
            Example {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                docs: serde_norway::Deserializer::from_str(&text)
                    .map(|d| Value::deserialize(d).unwrap())
                    .collect(),
                cel: lines("# cel: "),
                expect: lines("# expect: "),
            }
        })
        .collect()
}

/// The openAPIV3Schema of a kind's generated CRD, as JSON.
fn schema_for(kind: &str) -> Value {
    let crd = crd::all()
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c.spec.names.kind == kind)
        .expect("kind has a CRD");
    let schema = crd.spec.versions[0].schema.as_ref().unwrap();
    serde_json::to_value(schema.open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// `spec.amiSelectorTerms[0].tags[team]` -> `spec.amiSelectorTerms[].tags`:
/// a rule's path as the CRD places it.
fn rule_path(field_path: &str) -> String {
    let mut out = String::new();
    let mut in_brackets = false;
    for c in field_path.chars() {
        match c {
            '[' => in_brackets = true,
            ']' => {
                in_brackets = false;
                out.push_str("[]");
            }
            _ if !in_brackets => out.push(c),
            _ => {}
        }
    }
    out
}

/// "path: message" of every CEL rule the last object breaks.
fn cel_failures(ex: &Example) -> BTreeSet<String> {
    let new = ex.docs.last().unwrap();
    let old = (ex.docs.len() == 2).then(|| &ex.docs[0]);
    let schema = schema_for(new["kind"].as_str().unwrap());
    match kube_cel::Validator::new().validate(&schema, new, old) {
        Ok(()) => BTreeSet::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| {
                assert!(
                    matches!(e.kind, kube_cel::ErrorKind::ValidationFailure),
                    "{}: a rule did not evaluate: {e}",
                    ex.file
                );
                format!("{}: {}", rule_path(&e.field_path), e.message)
            })
            .collect(),
    }
}

/// "path: rule" of every problem `api::validation` reports.
fn rust_failures(ex: &Example) -> BTreeSet<String> {
    fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> T {
        serde_json::from_value(v.clone()).unwrap()
    }
    let new = ex.docs.last().unwrap();
    let old = (ex.docs.len() == 2).then(|| &ex.docs[0]);
    let result = match (new["kind"].as_str().unwrap(), old) {
        ("NodePool", None) => validation::nodepool(&parse::<NodePool>(new)),
        ("NodePool", Some(old)) => validation::nodepool_update(&parse(old), &parse(new)),
        ("NodeClaim", None) => validation::nodeclaim(&parse::<NodeClaim>(new)),
        ("NodeClaim", Some(old)) => validation::nodeclaim_update(&parse(old), &parse(new)),
        ("EC2NodeClass", None) => validation::ec2nodeclass(&parse::<EC2NodeClass>(new)),
        ("EC2NodeClass", Some(old)) => validation::ec2nodeclass_update(&parse(old), &parse(new)),
        (kind, _) if CRD_ONLY.contains(&kind) => Ok(()),
        (kind, _) => panic!("{}: unexpected kind {kind}", ex.file),
    };
    match result {
        Ok(()) => BTreeSet::new(),
        Err(errors) => errors.errors.iter().map(|e| e.to_string()).collect(),
    }
}

/// Every rule of the generated CRDs, as "path: message".
fn every_rule() -> BTreeSet<String> {
    crd::all()
        .into_iter()
        .map(|(_, c)| c.spec.names.kind)
        .flat_map(|kind| crd::cel_rules(&kind))
        .map(|(path, _, message)| format!("{path}: {message}"))
        .collect()
}

#[test]
fn each_rule_file_is_refused_by_the_rust_validation_and_the_crd_rules_alike() {
    let mut covered = BTreeSet::new();
    let mut mismatches = Vec::new();
    let messages: BTreeSet<String> = every_rule()
        .iter()
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect();
    for ex in examples() {
        assert!(
            (1..=2).contains(&ex.docs.len()),
            "{}: one object, or the stored one and its update",
            ex.file
        );
        let cel = cel_failures(&ex);
        let rust = rust_failures(&ex);
        if cel != ex.cel || rust != ex.expect || cel.is_empty() {
            let mut lines: Vec<String> = cel.iter().map(|l| format!("# cel: {l}")).collect();
            lines.extend(rust.iter().map(|l| format!("# expect: {l}")));
            mismatches.push(format!("{}:\n{}", ex.file, lines.join("\n")));
            continue;
        }
        if CRD_ONLY.contains(&ex.docs.last().unwrap()["kind"].as_str().unwrap_or_default()) {
            covered.extend(cel);
            continue;
        }
        // Each CEL message is also a Rust error (upstream's words, sometimes
        // followed by the offending value), and the other way round.
        let rust_rules: Vec<&str> = rust.iter().map(|l| l.split_once(": ").unwrap().1).collect();
        for line in &cel {
            let message = line.split_once(": ").unwrap().1;
            assert!(
                rust_rules.iter().any(|r| r.starts_with(message)),
                "{}: CEL reports {message:?}, api::validation does not",
                ex.file
            );
        }
        for rule in rust_rules
            .iter()
            .filter(|r| !validation::STRICTER_THAN_CEL.contains(r))
        {
            if messages.iter().any(|m| rule.starts_with(m.as_str())) {
                assert!(
                    cel.iter()
                        .any(|l| rule.starts_with(l.split_once(": ").unwrap().1)),
                    "{}: api::validation reports {rule:?}, the CRD's rules do not",
                    ex.file
                );
            }
        }
        covered.extend(cel);
    }
    assert!(
        mismatches.is_empty(),
        "files whose refusals differ from their '# cel:' and '# expect:' lines (the lines they would need):\n\n{}",
        mismatches.join("\n\n")
    );
    let missing: Vec<String> = every_rule().difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "CRD rules no file in examples/invalid/rules/ breaks:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn kubesim_admission_refuses_each_rule_file_with_its_rule() {
    let client = Kubesim::new().client();
    common::install_crds(&client).await;
    let mut checked = 0;
    for ex in examples() {
        let new = ex.docs.last().unwrap();
        let (group, version) = new["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let kind = new["kind"].as_str().unwrap();
        let plural = format!("{}s", kind.to_lowercase()).replace("classs", "classes");
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let api: Api<DynamicObject> = match new["metadata"]["namespace"].as_str() {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let object = |v: &Value| -> DynamicObject { serde_json::from_value(v.clone()).unwrap() };
        let refused = if ex.docs.len() == 2 {
            let stored = api
                .create(&PostParams::default(), &object(&ex.docs[0]))
                .await;
            let stored =
                stored.unwrap_or_else(|e| panic!("{}: storing the first object: {e}", ex.file));
            let mut update = object(new);
            update.metadata.resource_version = stored.metadata.resource_version.clone();
            let name = update.metadata.name.clone().unwrap();
            api.replace(&name, &PostParams::default(), &update).await
        } else {
            api.create(&PostParams::default(), &object(new)).await
        };
        let status = match refused {
            Err(kube::Error::Api(status)) => status,
            other => panic!("{}: expected a 422, got {other:?}", ex.file),
        };
        assert_eq!(status.code, 422, "{}: {}", ex.file, status.message);
        for line in &ex.cel {
            let message = line.split_once(": ").unwrap().1;
            assert!(
                status.message.contains(message),
                "{}: the API server's answer lacks {message:?}:\n{}",
                ex.file,
                status.message
            );
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} rule files");
}
