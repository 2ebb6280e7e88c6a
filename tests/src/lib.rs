//! End-to-end checks that drive the shipped programs as a platform team
//! does, not their libraries: the controller image as `scripts/build-image`
//! builds it (`tests/image.rs`), and the whole journey from `terraform apply`
//! to `terraform destroy` (`tests/journey.rs`).
//!
//! The binaries are the workspace's own builds; [`binaries`] builds them
//! first, so a test run after a change never drives a stale program.

pub mod account;
pub mod cluster;
pub mod iam;
pub mod nodes;
pub mod terraform;
pub mod workload;

use std::path::PathBuf;
use std::process::Command;

/// The three programs, built for this run, in the
/// target directory of the running test.
pub struct Binaries {
    /// `terraform-provider-karpenter`.
    pub provider: PathBuf,
    /// `karpenter-bootstrap`.
    pub bootstrap: PathBuf,
    /// `karpenter-controller`.
    pub controller: PathBuf,
}

/// Builds the three binaries (once per test process; not under
/// `scripts/test`, which sets `KARPENTER_E2E_PREBUILT` after building them
/// itself) and returns their paths. They are built as
/// `cargo test --workspace` builds them (the same command, so the same
/// features), so a test run after a change never drives a stale program.
pub fn binaries() -> &'static Binaries {
    static BUILT: std::sync::OnceLock<Binaries> = std::sync::OnceLock::new();
    BUILT.get_or_init(build)
}

fn build() -> Binaries {
    // `scripts/test` has just built the workspace's tests and binaries.
    if std::env::var_os("KARPENTER_E2E_PREBUILT").is_none() {
        cargo_build();
    }
    binaries_here()
}

fn cargo_build() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["test", "--workspace", "--no-run", "--quiet", "--locked"])
        .current_dir(test_support::repo_path("."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo test --workspace --no-run failed");
}

fn binaries_here() -> Binaries {
    // target/<profile>/deps/<this test> -> target/<profile>/
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the profile directory")
        .to_path_buf();
    Binaries {
        provider: dir.join("terraform-provider-karpenter"),
        bootstrap: dir.join("karpenter-bootstrap"),
        controller: dir.join("karpenter-controller"),
    }
}

/// Prints a step of a journey with how long it took, as it ends.
pub struct Steps {
    started: std::time::Instant,
    step: std::time::Instant,
}

impl Default for Steps {
    fn default() -> Self {
        let now = std::time::Instant::now();
        Steps {
            started: now,
            step: now,
        }
    }
}

impl Steps {
    /// Says that `what` (done by `program`) finished, and how long it took.
    pub fn done(&mut self, program: &str, what: &str) {
        let took = self.step.elapsed();
        self.step = std::time::Instant::now();
        say(&format!(
            "  [{:>6.1} s] {:<22} {what} ({:.1} s)",
            self.started.elapsed().as_secs_f64(),
            program,
            took.as_secs_f64()
        ));
    }

    /// Time since the first step began.
    pub fn total(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// Writes a line to the test's stderr even while the test harness captures
/// the test's output (it captures the `print!`/`eprint!` macros, not writes
/// to the `std::io::stderr()` handle), so a passing run shows its steps too,
/// in the suite's log as in CI's.
pub fn say(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
