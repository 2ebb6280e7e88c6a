//! Every real part the tests rely on is installed and runs (DESIGN.md §4).
//! Under `CI=true` a missing part fails here instead of skipping elsewhere.

use std::process::Command;
use test_support::{DevEnv, Part};

fn output(program: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn terraform_versions() {
    let env = DevEnv::load();
    for (part, version) in [
        (Part::Terraform1_0, "Terraform v1.0.3"),
        (Part::Terraform1_15, "Terraform v1.15."),
    ] {
        let Some(tf) = env.require(part, "terraform_versions") else {
            return;
        };
        let text = output(&tf, &["version"]);
        assert!(text.starts_with(version), "{part:?}: {text}");
    }
}

#[test]
fn kubectl_versions() {
    let env = DevEnv::load();
    for (part, minor) in [
        (Part::Kubectl, "\"minor\": \"33"),
        (Part::KubectlOld, "\"minor\": \"27"),
    ] {
        let Some(kubectl) = env.require(part, "kubectl_versions") else {
            return;
        };
        let text = output(&kubectl, &["version", "--client", "-o", "json"]);
        assert!(text.contains(minor), "{part:?}: {text}");
    }
}

#[test]
fn python_has_moto_and_helm() {
    let env = DevEnv::load();
    let Some(python) = env.require(Part::Python, "python_has_moto_and_helm") else {
        return;
    };
    let text = output(
        &python,
        &["-c", "import moto, helm_sdkpy; print(moto.__version__)"],
    );
    assert!(text.starts_with("5.2."), "moto version: {text}");
    assert!(
        env.require(Part::MotoServer, "python_has_moto_and_helm")
            .is_some()
    );
}
