//! What a binary's `--version` must say: its name, the workspace version
//! and the revision checked out (as `build-info` stamps it).

use std::path::Path;
use std::process::Command;

/// `<name> <version> (<12-digit revision>)`, or `unknown` outside git.
pub fn expected_version_line(name: &str) -> String {
    let root = crate::repo_path(".");
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    format!("{name} {} ({revision})", workspace_version(&root))
}

/// `[workspace.package] version` of the workspace at `root`.
pub fn workspace_version(root: &Path) -> String {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).expect("the workspace manifest");
    manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| section.lines().find(|l| l.starts_with("version")))
        .and_then(|l| l.split('"').nth(1))
        .expect("a workspace version")
        .to_string()
}

/// Runs `binary --version` and checks its first line.
pub fn assert_version(binary: &str, name: &str) {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{name} --version failed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().next().unwrap_or_default(),
        expected_version_line(name)
    );
}
