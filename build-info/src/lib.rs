//! For build scripts: sets `KARPENTER_COMMIT` to the git revision being
//! checked out (12 hex digits; `unknown` outside a git checkout, as in a
//! source tarball; uncommitted changes are not marked), so every binary's
//! `--version` and `karpenter_build_info` name the same revision.
//!
//! A package's `build.rs` calls [`emit`] from its `main`, and the code
//! reads `env!("KARPENTER_COMMIT")`.

use std::process::Command;

/// `git` in the package's directory; its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Prints the `cargo:` lines that set `KARPENTER_COMMIT` and rebuild when
/// the checked-out revision changes.
pub fn emit() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    println!(
        "cargo:rustc-env=KARPENTER_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{reference}");
        }
        println!("cargo:rerun-if-changed={git_dir}/packed-refs");
    }
}
