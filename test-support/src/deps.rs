//! What a package links, as `cargo tree` resolves it: for tests that hold a
//! crate boundary (the engine links no runtime; the production binary no
//! simulation).

use std::process::Command;

/// The crate names in `package`'s tree of normal dependencies (`extra`
/// narrows it, e.g. `["--depth", "1"]`), sorted and without repeats.
pub fn normal_dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(extra)
        .current_dir(crate::repo_path("."))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
