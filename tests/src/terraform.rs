//! The platform team's Terraform configuration: the `terraform/karpenter`
//! module (copied in as a local module, as a team vendors it), the provider
//! installed by `terraform init` from the packaged release through a
//! filesystem mirror, and the outputs `karpenter-bootstrap --from-terraform`
//! reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::command::run_checked;
use test_support::provider_package::ProviderPackage;

/// What the root configuration is written from.
pub struct Config<'a> {
    /// The provider version to require.
    pub version: &'a str,
    /// The kubeconfig the provider uses.
    pub kubeconfig: &'a Path,
    /// moto's endpoint.
    pub aws_endpoint: &'a str,
    /// The cluster's name.
    pub cluster_name: &'a str,
    /// The image the EC2NodeClass pins.
    pub image_id: &'a str,
    /// The `generation` label of the `general` pool's nodes: changing it
    /// changes the NodePool's template, so its nodes drift.
    pub generation: u32,
}

impl Config<'_> {
    /// The root module's `main.tf`.
    pub fn main_tf(&self) -> String {
        let Config {
            version,
            kubeconfig,
            aws_endpoint,
            cluster_name,
            image_id,
            generation,
        } = self;
        let account = crate::account::ACCOUNT_ID;
        let region = crate::account::REGION;
        let queue = karpenter_iam::queue::queue_name(cluster_name);
        format!(
            r#"terraform {{
  required_providers {{
    karpenter = {{ source = "karpenter-rs/karpenter", version = "{version}" }}
  }}
}}

provider "karpenter" {{
  config_path      = "{kubeconfig}"
  region           = "{region}"
  aws_endpoint_url = "{aws_endpoint}"
}}

module "karpenter" {{
  source                 = "./modules/karpenter"
  cluster_name           = "{cluster_name}"
  create_controller_role = true
  interruption_queue_arn = "arn:aws:sqs:{region}:{account}:{queue}"
  ami_id                 = "{image_id}"
  tags                   = {{ team = "platform" }}
  nodepools = {{
    general = {{
      consolidate_after = "5s"
      labels            = {{ tier = "general", generation = "{generation}" }}
    }}
    batch = {{
      consolidate_after = "5s"
      capacity_types    = ["on-demand"]
      labels            = {{ tier = "batch" }}
      taints            = [{{ key = "dedicated", value = "batch", effect = "NoSchedule" }}]
    }}
  }}
}}

output "cluster_name" {{
  value = "{cluster_name}"
}}
output "region" {{
  value = "{region}"
}}
output "node_role_name" {{
  value = module.karpenter.node_role_name
}}
output "iam_role_arn" {{
  value = module.karpenter.controller_role_arn
}}
"#,
            kubeconfig = kubeconfig.display()
        )
    }
}

/// A working directory with the configuration, the vendored module and a
/// CLI configuration that installs the provider from the package's mirror.
pub struct Workspace {
    /// The Terraform binary.
    pub terraform: PathBuf,
    /// The working directory.
    pub dir: PathBuf,
    rc: PathBuf,
}

impl Workspace {
    /// Prepares `dir` (the module copied to `modules/karpenter`).
    pub fn new(terraform: &Path, dir: &Path, package: &ProviderPackage) -> Self {
        let module = dir.join("modules/karpenter");
        std::fs::create_dir_all(&module).unwrap();
        for entry in std::fs::read_dir(test_support::repo_path("terraform/karpenter")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "tf") {
                std::fs::copy(&path, module.join(path.file_name().unwrap())).unwrap();
            }
        }
        let rc = dir.join("terraformrc");
        std::fs::write(&rc, package.filesystem_mirror_config()).unwrap();
        Workspace {
            terraform: terraform.to_path_buf(),
            dir: dir.to_path_buf(),
            rc,
        }
    }

    /// Writes the root configuration.
    pub fn write(&self, config: &Config) {
        std::fs::write(self.dir.join("main.tf"), config.main_tf()).unwrap();
    }

    /// The environment every Terraform run gets (also the bootstrap's,
    /// which runs `terraform output`).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("TF_CLI_CONFIG_FILE", self.rc.display().to_string()),
            ("TF_IN_AUTOMATION", "1".into()),
            ("CHECKPOINT_DISABLE", "1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }

    /// Runs `terraform ARGS... -no-color` (`-input=false -auto-approve`
    /// for apply and destroy); panics naming the command and its output
    /// when it fails. Blocking: call it from `spawn_blocking`.
    pub fn run(&self, args: &[&str]) -> String {
        let mut command = Command::new(&self.terraform);
        command.args(args).arg("-no-color");
        if matches!(args[0], "apply" | "destroy") {
            command.args(["-input=false", "-auto-approve"]);
        }
        run_checked("terraform", command.current_dir(&self.dir).envs(self.env()))
    }
}
