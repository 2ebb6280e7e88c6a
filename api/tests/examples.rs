//! Every manifest in `examples/gitops/` parses, round-trips, defaults the same way
//! through the typed defaults and the CRD schema, and passes both `api::validation`
//! and the CRD's CEL rules; every manifest in `examples/invalid/` fails with exactly
//! the errors its `# expect:` lines list, and the CEL rules agree with them.

use karpenter_api::v1::{EC2NodeClass, NodeClaim, NodePool};
use karpenter_api::{crd, defaults, validation};
use pretty_assertions::assert_eq;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn examples_dir(name: &str) -> PathBuf {
    test_support::repo_path("examples").join(name)
}

/// (file name, file text) for every YAML file in a folder, sorted.
fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
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

/// What the CEL rules say of a document, evaluated as the API server would:
/// the messages of the rules that fail, and the paths of rules that could
/// not evaluate (upstream's rules read `x.values` of a requirement without
/// values; the API server refuses such an object with the evaluation error).
fn cel_failures(origin: &str, doc: &Value) -> (Vec<String>, Vec<String>) {
    let schema = schema_for(doc["kind"].as_str().unwrap());
    let mut failed = Vec::new();
    let mut unevaluated = Vec::new();
    if let Err(errors) = kube_cel::Validator::new().validate(&schema, doc, None) {
        for e in errors.into_vec() {
            match e.kind {
                kube_cel::ErrorKind::ValidationFailure => failed.push(e.message),
                kube_cel::ErrorKind::EvaluationError => unevaluated.push(e.field_path),
                _ => panic!("{origin}: CEL rule did not compile: {e}"),
            }
        }
    }
    (failed, unevaluated)
}

/// Parses, checks round-trip and defaulting, validates. Returns the validation result.
fn check_document(origin: &str, doc: &Value) -> Result<(), validation::ValidationErrors> {
    let kind = doc["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("{origin}: no kind"));
    let mut schema_defaulted = doc.clone();
    let schema = serde_json::from_value(schema_for(kind)).unwrap();
    crd::apply_schema_defaults(&schema, &mut schema_defaulted);

    macro_rules! check {
        ($ty:ty, $default:path, $validate:path) => {{
            let mut obj: $ty =
                serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{origin}: {e}"));
            assert_eq!(
                &serde_json::to_value(&obj).unwrap(),
                doc,
                "{origin}: {kind} must round-trip unchanged"
            );
            $default(&mut obj);
            assert_eq!(
                serde_json::to_value(&obj).unwrap(),
                schema_defaulted,
                "{origin}: typed defaults and CRD schema defaults must agree"
            );
            let again: $ty = serde_json::from_value(serde_json::to_value(&obj).unwrap()).unwrap();
            assert_eq!(again, obj, "{origin}: the defaulted object must round-trip");
            $validate(&obj)
        }};
    }
    match kind {
        "NodePool" => check!(NodePool, defaults::nodepool, validation::nodepool),
        "NodeClaim" => check!(NodeClaim, defaults::nodeclaim, validation::nodeclaim),
        "EC2NodeClass" => check!(
            EC2NodeClass,
            defaults::ec2nodeclass,
            validation::ec2nodeclass
        ),
        other => panic!("{origin}: unexpected kind {other}"),
    }
}

#[test]
fn every_gitops_example_round_trips_defaults_and_validates() {
    let checked = check_valid_dir("gitops");
    assert!(
        checked >= 15,
        "expected the full example set, checked only {checked} documents"
    );
}

/// What `karpenter-bootstrap convert` made of the old manifests in
/// `examples/migration/` (its own tests keep these files current) is valid
/// v1 for the Rust validation and the CRDs' CEL rules alike.
#[test]
fn every_converted_migration_example_validates() {
    let checked = check_valid_dir("migration/converted");
    assert!(checked >= 14, "checked only {checked} converted documents");
}

/// Checks every document in `examples/<dir>` is valid; returns how many.
fn check_valid_dir(dir: &str) -> usize {
    let mut checked = 0;
    for (file, text) in yaml_files(&examples_dir(dir)) {
        for (i, doc) in documents(&text).iter().enumerate() {
            let origin = format!("{file}#{i}");
            if let Err(errors) = check_document(&origin, doc) {
                panic!("{origin} should be valid:\n{errors}");
            }
            assert_eq!(
                cel_failures(&origin, doc),
                (Vec::new(), Vec::new()),
                "{origin}: CEL rules must accept it"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_invalid_example_fails_with_exactly_its_documented_errors() {
    let files = yaml_files(&examples_dir("invalid"));
    let mut cel_checked = 0;
    assert!(
        files.len() >= 17,
        "expected the full invalid set, found {}",
        files.len()
    );
    for (file, text) in files {
        let mut expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_string)
            .collect();
        assert!(!expected.is_empty(), "{file}: no '# expect:' lines");
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{file}: one object per invalid example");
        let errors = check_document(&file, &docs[0]).expect_err(&file);
        let mut actual: Vec<String> = errors.errors.iter().map(|e| e.to_string()).collect();
        expected.sort();
        actual.sort();
        assert_eq!(
            actual, expected,
            "{file}: errors differ from the documented ones"
        );

        // The CRD's CEL rules catch the same problems wherever a rule covers them.
        let (cel, unevaluated) = cel_failures(&file, &docs[0]);
        for path in &unevaluated {
            assert!(
                errors
                    .errors
                    .iter()
                    .any(|e| e.path.starts_with(path.as_str())),
                "{file}: a CEL rule at {path} refuses it (evaluation error), api::validation does not"
            );
        }
        let rules: Vec<&str> = errors.errors.iter().map(|e| e.rule.as_str()).collect();
        for message in &cel {
            // Our message is upstream's, sometimes followed by the offending values.
            let known = rules.iter().any(|r| r.starts_with(message.as_str()));
            assert!(
                known,
                "{file}: CEL reports {message:?}, api::validation does not"
            );
        }
        let covered = cel_messages(&docs[0]);
        for rule in rules
            .iter()
            .filter(|r| covered.iter().any(|m| r.starts_with(m.as_str())))
            .filter(|r| !validation::STRICTER_THAN_CEL.contains(r))
        {
            let caught =
                cel.iter().any(|m| rule.starts_with(m.as_str())) || !unevaluated.is_empty();
            assert!(
                caught,
                "{file}: api::validation reports {rule:?}, the CRD's CEL rules do not"
            );
            cel_checked += 1;
        }
    }
    assert!(
        cel_checked >= 10,
        "only {cel_checked} problems were cross-checked against CEL rules"
    );
}

/// Every CEL rule message in a kind's CRD schema.
fn cel_messages(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for rule in map
                    .get("x-kubernetes-validations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(rule["message"].as_str().map(str::to_string));
                }
                map.values().for_each(|child| walk(child, out));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&schema_for(doc["kind"].as_str().unwrap()), &mut out);
    out
}

#[test]
fn errors_name_the_object_and_count_problems() {
    let text = std::fs::read_to_string(examples_dir("invalid").join("nodepool-weight-limits.yaml"))
        .unwrap();
    let pool: NodePool = serde_norway::from_str(&text).unwrap();
    let message = validation::nodepool(&pool).unwrap_err().to_string();
    assert!(
        message.starts_with("NodePool \"weight-limits\" is invalid (3 problems):\n  "),
        "{message}"
    );
    assert!(
        message.contains("\n  spec.weight: must be between 1 and 100 (got 101)"),
        "{message}"
    );
}

#[test]
fn ec2nodeclass_identity_transitions_are_refused() {
    let text = std::fs::read_to_string(examples_dir("gitops").join("default.yaml")).unwrap();
    let old: EC2NodeClass = documents(&text)
        .into_iter()
        .find(|d| d["kind"] == "EC2NodeClass")
        .map(|d| serde_json::from_value(d).unwrap())
        .unwrap();
    let mut new = old.clone();
    new.spec.role = None;
    new.spec.instance_profile = Some("Profile".into());
    let errors = validation::ec2nodeclass_update(&old, &new).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors.contains(
        "spec.role",
        "changing from 'role' to 'instanceProfile' is not supported"
    ));
    let mut renamed = old.clone();
    renamed.spec.role = Some("OtherRole".into());
    assert!(validation::ec2nodeclass_update(&old, &renamed).is_ok());
}
