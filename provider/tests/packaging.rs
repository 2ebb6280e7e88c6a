//! The provider as a platform team installs it: `scripts/package-provider`
//! packs the built binary as Terraform's registry does (zip, SHA256SUMS,
//! protocol manifest), lays out a filesystem mirror and a network mirror,
//! and `terraform init` on Terraform 1.0.3 and 1.15 installs it from each,
//! writing the lock file with the package's `h1:` hash. No `dev_overrides`.
//!
//! The network mirror is served over HTTPS by a small static file server
//! below, with a certificate Terraform trusts through `SSL_CERT_FILE` (as a
//! company CA would be trusted); it answers GET only, which is all the
//! mirror protocol uses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use test_support::command::run_checked;
use test_support::provider_package::{ProviderPackage, SOURCE};
use test_support::{DevEnv, Part};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("provider-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn package(dir: &Path) -> ProviderPackage {
    ProviderPackage::build(
        Path::new(env!("CARGO_BIN_EXE_terraform-provider-karpenter")),
        &dir.join("dist"),
    )
}

/// The files a release carries, and a checksum file that verifies them.
#[test]
fn the_package_is_a_registry_style_release_whose_checksums_verify() {
    let dir = scratch("package");
    let pkg = package(&dir.0);
    let version = &pkg.version;
    assert_eq!(
        pkg.archive,
        format!(
            "terraform-provider-karpenter_{version}_linux_{}.zip",
            if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                "amd64"
            }
        )
    );
    let sums = std::fs::read_to_string(
        pkg.dir
            .join(format!("terraform-provider-karpenter_{version}_SHA256SUMS")),
    )
    .unwrap();
    let zip = std::fs::read(pkg.dir.join(&pkg.archive)).unwrap();
    assert_eq!(sums, format!("{}  {}\n", sha256_hex(&zip), pkg.archive));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pkg.dir.join(format!(
            "terraform-provider-karpenter_{version}_manifest.json"
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );
    // The archive holds one executable, named as the registry names it.
    let listing = Command::new("unzip")
        .arg("-Z1")
        .arg(pkg.dir.join(&pkg.archive))
        .output()
        .expect("unzip runs");
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout).trim(),
        format!("terraform-provider-karpenter_v{version}")
    );
    // The mirrors hold the same bytes.
    for mirror in ["filesystem-mirror", "network-mirror"] {
        let copy = pkg.dir.join(mirror).join(SOURCE).join(&pkg.archive);
        assert_eq!(std::fs::read(copy).unwrap(), zip, "{mirror}");
    }
    // Packaging again gives a byte-identical archive.
    let again = ProviderPackage::build(
        Path::new(env!("CARGO_BIN_EXE_terraform-provider-karpenter")),
        &dir.0.join("again"),
    );
    assert_eq!(std::fs::read(again.dir.join(&again.archive)).unwrap(), zip);
}

/// A configuration whose validation needs the provider's schema.
const CONFIG: &str = r#"terraform {
  required_providers {
    karpenter = { source = "karpenter-rs/karpenter", version = "VERSION" }
  }
}

data "karpenter_controller_policy" "this" {
  cluster_name  = "demo"
  region        = "us-east-1"
  account_id    = "123456789012"
  node_role_arn = "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo"
}

output "statements" {
  value = length(jsondecode(data.karpenter_controller_policy.this.json).Statement)
}
"#;

/// `terraform init` with `cli_config` in a fresh directory; then the lock
/// file must pin the package's version and hash, and `validate` (which
/// starts the provider for its schema) must pass.
fn init_from_mirror(
    terraform: &Path,
    work: &Path,
    cli_config: &str,
    pkg: &ProviderPackage,
    extra_env: &[(&str, &Path)],
) {
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(
        work.join("main.tf"),
        CONFIG.replace("VERSION", &pkg.version),
    )
    .unwrap();
    std::fs::write(work.join("terraformrc"), cli_config).unwrap();
    let run = |args: &[&str]| {
        run_checked(
            "terraform",
            Command::new(terraform)
                .args(args)
                .arg("-no-color")
                .current_dir(work)
                .env("TF_CLI_CONFIG_FILE", work.join("terraformrc"))
                .env("TF_IN_AUTOMATION", "1")
                .env("CHECKPOINT_DISABLE", "1")
                .envs(extra_env.iter().map(|(k, v)| (*k, *v))),
        )
    };
    run(&["init", "-input=false"]);
    let lock = std::fs::read_to_string(work.join(".terraform.lock.hcl")).expect("a lock file");
    assert!(lock.contains(&format!("provider \"{SOURCE}\"")), "{lock}");
    assert!(
        lock.contains(&format!("version     = \"{}\"", pkg.version)),
        "{lock}"
    );
    assert!(
        lock.contains(&pkg.h1),
        "the lock file records {}:\n{lock}",
        pkg.h1
    );
    run(&["validate"]);
}

fn terraforms(test: &str) -> Vec<(&'static str, PathBuf)> {
    let env = DevEnv::load();
    [("1.0", Part::Terraform1_0), ("1.15", Part::Terraform1_15)]
        .into_iter()
        .filter_map(|(name, part)| env.require(part, test).map(|p| (name, p)))
        .collect()
}

#[test]
fn terraform_init_installs_the_package_from_a_filesystem_mirror() {
    let dir = scratch("fs-mirror");
    let pkg = package(&dir.0);
    for (name, terraform) in terraforms("filesystem mirror") {
        init_from_mirror(
            &terraform,
            &dir.0.join(name),
            &pkg.filesystem_mirror_config(),
            &pkg,
            &[],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_init_installs_the_package_from_a_network_mirror_over_https() {
    let dir = scratch("net-mirror");
    let pkg = package(&dir.0);
    let (url, ca) = serve_https(pkg.dir.join("network-mirror"), &dir.0).await;
    let config = ProviderPackage::network_mirror_config(&url);
    for (name, terraform) in terraforms("network mirror") {
        let work = dir.0.join(name);
        let (terraform, pkg, config, ca) =
            (terraform.clone(), pkg.clone(), config.clone(), ca.clone());
        tokio::task::spawn_blocking(move || {
            init_from_mirror(&terraform, &work, &config, &pkg, &[("SSL_CERT_FILE", &ca)])
        })
        .await
        .unwrap();
    }
}

/// Serves `root`'s files over HTTPS on a loopback port; returns the base URL
/// and the path of the certificate to trust.
async fn serve_https(root: PathBuf, scratch: &Path) -> (String, PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let ca = scratch.join("mirror-ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, root) = (acceptor.clone(), root.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = answer(&mut tls, &root).await;
                }
            });
        }
    });
    (format!("https://127.0.0.1:{port}/"), ca)
}

/// Answers one GET with the file at its path under `root` (404 otherwise),
/// then closes the connection.
async fn answer<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    root: &Path,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_start_matches('/');
    let file = (!path.split('/').any(|p| p == ".."))
        .then(|| std::fs::read(root.join(path)).ok())
        .flatten();
    let (status, body, kind) = match file {
        Some(body) if path.ends_with(".json") => ("200 OK", body, "application/json"),
        Some(body) => ("200 OK", body, "application/zip"),
        None => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
