//! The Terraform provider as users install it: packaged by
//! `scripts/package-provider`, then found by `terraform init` through a
//! filesystem or network mirror (never `dev_overrides`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The provider's source address as configurations name it.
pub const SOURCE: &str = "registry.terraform.io/karpenter-rs/karpenter";

/// What `scripts/package-provider` wrote.
#[derive(Debug, Clone)]
pub struct ProviderPackage {
    /// The output directory.
    pub dir: PathBuf,
    /// The workspace version the archive carries.
    pub version: String,
    /// The archive's file name (`terraform-provider-karpenter_<v>_<os>_<arch>.zip`).
    pub archive: String,
    /// Terraform's `h1:` hash of the archive, as the script printed it.
    pub h1: String,
}

impl ProviderPackage {
    /// Runs the packaging script on `binary`, writing into `out`; panics with
    /// the script's output when it fails.
    pub fn build(binary: &Path, out: &Path) -> Self {
        let output = Command::new(crate::repo_path("scripts/package-provider"))
            .arg("--binary")
            .arg(binary)
            .arg("--out")
            .arg(out)
            .output()
            .expect("scripts/package-provider runs");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "scripts/package-provider failed:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut lines = text.lines();
        let archive = lines
            .next()
            .and_then(|l| l.rsplit('/').next())
            .expect("the archive's path")
            .to_string();
        let h1 = lines
            .map(str::trim)
            .find(|l| l.starts_with("h1:"))
            .expect("the h1 hash")
            .to_string();
        ProviderPackage {
            dir: out.to_path_buf(),
            version: crate::version::workspace_version(&crate::repo_path(".")),
            archive,
            h1,
        }
    }

    /// A Terraform CLI configuration installing the provider from the
    /// filesystem mirror and nothing from anywhere else.
    pub fn filesystem_mirror_config(&self) -> String {
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{SOURCE}\"]\n  }}\n}}\n",
            self.dir.join("filesystem-mirror").display()
        )
    }

    /// A Terraform CLI configuration installing the provider from the
    /// network mirror served at `url` (HTTPS, ending in `/`).
    pub fn network_mirror_config(url: &str) -> String {
        format!(
            "provider_installation {{\n  network_mirror {{\n    url     = \"{url}\"\n    include = [\"{SOURCE}\"]\n  }}\n}}\n"
        )
    }
}
