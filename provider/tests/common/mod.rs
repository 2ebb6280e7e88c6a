//! What the provider's Terraform tests (and its bench) share: a working
//! directory whose CLI configuration points Terraform at the freshly built
//! provider, and a kubesim cluster served over TLS with Karpenter's CRDs.
#![allow(dead_code)] // each test file uses a different part

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One Terraform working directory using the provider under test.
#[derive(Clone)]
pub struct Workspace {
    /// The Terraform binary.
    pub terraform: PathBuf,
    /// The working directory.
    pub dir: PathBuf,
    rc: PathBuf,
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A fresh directory under the system's temp folder for test `name`.
    pub fn new(terraform: PathBuf, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tf-karpenter-{}-{}",
            std::process::id(),
            name.replace(' ', "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self::at(terraform, dir)
    }

    /// A workspace in `dir` (which exists).
    pub fn at(terraform: PathBuf, dir: PathBuf) -> Self {
        let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-karpenter"))
            .parent()
            .unwrap()
            .to_path_buf();
        let rc = dir.join(".terraformrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"karpenter-rs/karpenter\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .unwrap();
        let env = vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        Workspace {
            terraform,
            dir,
            rc,
            env,
        }
    }

    /// The same workspace in another directory (same CLI configuration).
    pub fn in_dir(&self, dir: PathBuf) -> Self {
        Workspace {
            dir,
            ..self.clone()
        }
    }

    /// Sets an environment variable for every run (`TF_VAR_*` for variables).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Writes `main.tf`.
    pub fn write(&self, config: &str) {
        std::fs::write(self.dir.join("main.tf"), config).unwrap();
    }

    /// Runs `terraform COMMAND [flags] ARGS...` (no colour; no prompts for
    /// the commands that would ask); returns the exit code and the output.
    pub fn run(&self, args: &[&str]) -> (i32, String) {
        let interactive = matches!(args[0], "apply" | "plan" | "destroy" | "import");
        let out = Command::new(&self.terraform)
            .arg(args[0])
            .arg("-no-color")
            .args(interactive.then_some("-input=false"))
            .args(&args[1..])
            .current_dir(&self.dir)
            .envs(self.env.iter().cloned())
            .env("TF_CLI_CONFIG_FILE", &self.rc)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("terraform runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs and requires success; returns the output.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, text) = self.run(args);
        assert_eq!(code, 0, "terraform {args:?} failed:\n{text}");
        text
    }

    /// `plan -detailed-exitcode`: 0 when clean, 2 when there are changes.
    pub fn plan(&self) -> (i32, String) {
        self.run(&["plan", "-detailed-exitcode"])
    }

    /// Forgets the state, imports `address` by `id`, and requires the
    /// imported state to plan clean against the configuration.
    pub fn import_plans_clean(&self, address: &str, id: &str) {
        for file in ["terraform.tfstate", "terraform.tfstate.backup"] {
            let _ = std::fs::remove_file(self.dir.join(file));
        }
        self.ok(&["import", address, id]);
        let (code, text) = self.plan();
        assert_eq!(code, 0, "{address}: import does not plan clean: {text}");
    }
}

/// kubesim served over TLS (kubeconfig in `dir`), with Karpenter's CRDs.
pub async fn cluster(dir: &Path) -> (kubesim::Kubesim, kubesim::Served) {
    let sim = kubesim::Kubesim::new();
    let served = sim
        .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
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
    (sim, served)
}

/// The provider block for a kubeconfig (and moto, when given), then `body`.
pub fn config(kubeconfig: Option<&Path>, aws_endpoint: Option<&str>, body: &str) -> String {
    let mut provider = String::new();
    if let Some(path) = kubeconfig {
        provider.push_str(&format!("  config_path = \"{}\"\n", path.display()));
    }
    if let Some(url) = aws_endpoint {
        provider.push_str(&format!(
            "  region           = \"us-east-1\"\n  aws_endpoint_url = \"{url}\"\n"
        ));
    }
    format!(
        "terraform {{\n  required_providers {{\n    karpenter = {{ source = \"karpenter-rs/karpenter\" }}\n  }}\n}}\n\nprovider \"karpenter\" {{\n{provider}}}\n\n{body}\n"
    )
}
