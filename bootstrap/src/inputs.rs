//! Where the bootstrap's inputs come from, strongest first: flags (and
//! their environment variables), a config file (`--config`), and the
//! outputs of a Terraform configuration (`--from-terraform DIR`, through
//! `terraform output -json`). Each source fills only what the stronger ones
//! left empty.

use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// The bootstrap's inputs cannot be read (a config file, `terraform output`):
/// the message names the source and what is wrong; fix it and run again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputsError(pub String);

/// Every input, each optional until the sources are combined.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Inputs {
    /// The EKS cluster's name.
    pub cluster_name: Option<String>,
    /// Its region.
    pub region: Option<String>,
    /// Another AWS endpoint (an emulator).
    pub endpoint_url: Option<String>,
    /// The API server endpoint nodes join (`settings.clusterEndpoint`).
    pub cluster_endpoint: Option<String>,
    /// The cluster's OIDC issuer: set, the controller uses IRSA.
    pub oidc_issuer: Option<String>,
    /// An existing node role to use instead of `KarpenterNodeRole-<cluster>`.
    pub node_role_name: Option<String>,
    /// An existing controller role to use instead of `KarpenterController-<cluster>`.
    pub controller_role_name: Option<String>,
    /// The Helm release's name.
    pub release_name: Option<String>,
    /// The namespace of the release.
    pub namespace: Option<String>,
    /// Chart values, over what the bootstrap sets.
    pub values: Option<Value>,
    /// Attach Session Manager's policy to the node role.
    pub ssm: Option<bool>,
    /// Give the node role an instance profile.
    pub instance_profile: Option<bool>,
    /// Subnets and security groups to give the discovery tag.
    pub discovery_tag: Option<Vec<String>>,
}

macro_rules! fill {
    ($self:ident, $other:ident, $($field:ident),*) => {
        $( if $self.$field.is_none() { $self.$field = $other.$field; } )*
    };
}

impl Inputs {
    /// These inputs, with what they lack taken from `weaker`.
    pub fn or(mut self, weaker: Inputs) -> Inputs {
        fill!(
            self,
            weaker,
            cluster_name,
            region,
            endpoint_url,
            cluster_endpoint,
            oidc_issuer,
            node_role_name,
            controller_role_name,
            release_name,
            namespace,
            values,
            ssm,
            instance_profile,
            discovery_tag
        );
        self
    }

    /// Reads a config file (YAML or JSON) whose keys are the flags' names.
    pub fn from_config_file(path: &Path) -> Result<Inputs, InputsError> {
        Self::read_config_file(path).map_err(InputsError)
    }

    fn read_config_file(path: &Path) -> Result<Inputs, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: {e}", path.display()))?;
        serde_norway::from_str(&text).map_err(|e| format!("--config {}: {e}", path.display()))
    }

    /// The inputs a Terraform configuration's outputs give (the output
    /// names of `terraform-aws-modules/eks` and its `karpenter` module, and
    /// of this project's module): `terraform output -json` as parsed JSON.
    pub fn from_terraform_outputs(outputs: &Value) -> Result<Inputs, InputsError> {
        Self::read_terraform_outputs(outputs).map_err(InputsError)
    }

    fn read_terraform_outputs(outputs: &Value) -> Result<Inputs, String> {
        let Value::Object(map) = outputs else {
            return Err("terraform output -json did not print an object".into());
        };
        let text = |names: &[&str]| -> Option<String> {
            names.iter().find_map(|name| {
                map.get(*name)
                    .and_then(|o| o["value"].as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            })
        };
        let ids = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .filter_map(|name| map.get(*name).map(|o| &o["value"]))
                .flat_map(|v| match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()
        };
        let discovery = ids(&["private_subnets", "node_security_group_id"]);
        let role_name = |names: &[&str]| {
            text(names).map(|v| v.rsplit('/').next().unwrap_or_default().to_string())
        };
        Ok(Inputs {
            cluster_name: text(&["cluster_name"]),
            region: text(&["region", "aws_region"]),
            cluster_endpoint: text(&["cluster_endpoint"]),
            oidc_issuer: text(&["cluster_oidc_issuer_url", "oidc_issuer"]),
            node_role_name: role_name(&[
                "node_iam_role_name",
                "node_role_name",
                "node_iam_role_arn",
            ]),
            controller_role_name: role_name(&[
                "iam_role_name",
                "controller_role_name",
                "iam_role_arn",
            ]),
            discovery_tag: (!discovery.is_empty()).then_some(discovery),
            ..Inputs::default()
        })
    }

    /// Runs `terraform output -json` in `dir` with `terraform` (a path, or a
    /// name on the PATH) and reads its outputs.
    pub fn from_terraform_dir(dir: &Path, terraform: &str) -> Result<Inputs, InputsError> {
        Self::read_terraform_dir(dir, terraform).map_err(InputsError)
    }

    fn read_terraform_dir(dir: &Path, terraform: &str) -> Result<Inputs, String> {
        let out = std::process::Command::new(terraform)
            .args(["output", "-json"])
            .current_dir(dir)
            .output()
            .map_err(|e| {
                format!(
                    "--from-terraform {}: cannot run {terraform:?} ({e}); install Terraform or set TERRAFORM",
                    dir.display()
                )
            })?;
        if !out.status.success() {
            return Err(format!(
                "--from-terraform {}: terraform output -json failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let outputs: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "--from-terraform {}: terraform printed no JSON: {e}",
                dir.display()
            )
        })?;
        Inputs::from_terraform_outputs(&outputs)
            .map_err(|e| format!("--from-terraform {}: {e}", dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stronger_sources_win_and_weaker_ones_fill_gaps() {
        let flags = Inputs {
            cluster_name: Some("from-flag".into()),
            ..Inputs::default()
        };
        let file = Inputs {
            cluster_name: Some("from-file".into()),
            region: Some("eu-west-1".into()),
            ..Inputs::default()
        };
        let resolved = flags.or(file);
        assert_eq!(resolved.cluster_name.as_deref(), Some("from-flag"));
        assert_eq!(resolved.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn terraform_module_outputs_are_understood() {
        let outputs = json!({
            "cluster_name": {"value": "prod", "type": "string", "sensitive": false},
            "cluster_endpoint": {"value": "https://ABC.gr7.us-east-1.eks.amazonaws.com", "type": "string"},
            "cluster_oidc_issuer_url": {"value": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"},
            "node_iam_role_arn": {"value": "arn:aws:iam::123456789012:role/prod-nodes"},
            "region": {"value": "us-east-1"},
            "private_subnets": {"value": ["subnet-a", "subnet-b"]},
            "node_security_group_id": {"value": "sg-1"},
            "unrelated": {"value": ["x"]},
        });
        let inputs = Inputs::from_terraform_outputs(&outputs).unwrap();
        assert_eq!(inputs.cluster_name.as_deref(), Some("prod"));
        assert_eq!(inputs.node_role_name.as_deref(), Some("prod-nodes"));
        assert_eq!(inputs.controller_role_name, None);
        assert_eq!(
            inputs.discovery_tag,
            Some(vec!["subnet-a".into(), "subnet-b".into(), "sg-1".into()])
        );
        assert_eq!(
            inputs.oidc_issuer.as_deref(),
            Some("https://oidc.eks.us-east-1.amazonaws.com/id/ABC")
        );
        assert!(Inputs::from_terraform_outputs(&json!([])).is_err());
    }

    #[test]
    fn a_config_file_with_an_unknown_key_names_it() {
        let dir = std::env::temp_dir().join(format!("bootstrap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bootstrap.yaml");
        std::fs::write(&path, "cluster-name: demo\nregoin: us-east-1\n").unwrap();
        let err = Inputs::from_config_file(&path).unwrap_err();
        assert!(err.0.contains("regoin"), "{err}");
        std::fs::write(
            &path,
            "cluster-name: demo\nvalues:\n  replicas: 1\nssm: true\n",
        )
        .unwrap();
        let inputs = Inputs::from_config_file(&path).unwrap();
        assert_eq!(inputs.values, Some(json!({"replicas": 1})));
        assert_eq!(inputs.ssm, Some(true));
    }
}
