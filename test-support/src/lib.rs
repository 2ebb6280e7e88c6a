//! Test helpers shared by every crate's tests.
//!
//! - [`DevEnv`] finds the real test parts `scripts/dev-env` installed (moto,
//!   Terraform 1.0 and 1.15, helm-sdkpy, kubectl 1.33 and 1.27). A missing part
//!   makes a test skip with a loud message locally and fail under `CI=true`.
//! - [`MotoServer`] starts an isolated moto server on a free loopback port and
//!   stops it when dropped, or when the test process exits.
//! - [`command::run_checked`] runs a program and fails naming it, with its output.
//! - [`eventually`] waits on a condition with a deadline.
//! - [`provider_package::ProviderPackage`] packages the Terraform provider
//!   as users install it (`scripts/package-provider`).
//! - [`pod::start_in_cluster`] starts a binary as a Deployment's container
//!   would run, with in-cluster configuration.
//! - [`iam::evaluate`] evaluates AWS requests against an IAM policy, conditions
//!   included (`@cloud-copilot/iam-simulate`); [`aws_requests`] turns the
//!   controller's recorded AWS calls into the requests IAM authorizes.

pub mod command;
pub mod deps;
mod devenv;
pub mod iam;
mod moto;
pub mod pod;
pub mod provider_package;
pub mod version;
mod wait;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod aws_requests;
pub use devenv::{DevEnv, Part, repo_path, shared_path, skip};
pub use moto::{LoggedRequest, MotoError, MotoServer};
pub use wait::{DEADLINE, eventually, eventually_some, eventually_within};

/// A fresh, empty directory under the system's temporary directory for
/// this test process (`karpenter-test-<label>-<pid>-<n>`); tests that keep
/// it on failure remove it themselves when they pass.
pub fn scratch_dir(label: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("karpenter-test-{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A loopback port free right now (for a server the test starts next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
