//! `terraform-provider-karpenter`: a Terraform provider (plugin protocol 6
//! over gRPC with go-plugin's automatic mutual TLS).
//!
//! Terraform starts the binary with `TF_PLUGIN_MAGIC_COOKIE`,
//! `PLUGIN_PROTOCOL_VERSIONS` and `PLUGIN_CLIENT_CERT` set; the provider
//! listens on a loopback port and prints one handshake line on stdout
//! (`1|6|tcp|ADDR|grpc|CERT`), then nothing else ever goes to stdout. It
//! exits when Terraform calls `Shutdown` or goes away.

mod aws_client;
mod cty;
mod data_sources;
#[cfg(test)]
mod docs;
mod error;
mod kube_client;
mod mapping;
mod plugin;
mod proto;
mod provider;
mod resources;
mod schema;
mod tls;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// go-plugin's handshake cookie for Terraform providers.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

#[tokio::main]
async fn main() {
    // Terraform never passes arguments; a person asking gets the version.
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!(
            "terraform-provider-karpenter {} ({})",
            env!("CARGO_PKG_VERSION"),
            env!("KARPENTER_COMMIT")
        );
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TF_LOG_PROVIDER_KARPENTER")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Err(message) = run().await {
        eprintln!("terraform-provider-karpenter: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        return Err(
            "this is a Terraform plugin: Terraform starts it; it is not meant to be run by hand"
                .into(),
        );
    }
    let versions = std::env::var("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_default();
    if !versions.split(',').any(|v| v.trim() == "6") {
        return Err(format!(
            "Terraform offers plugin protocol versions {versions:?}; this provider speaks 6 (Terraform 1.0 or newer)"
        ));
    }
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .map_err(|_| "PLUGIN_CLIENT_CERT is not set: Terraform's automatic TLS is required")?;
    let tls = tls::server_tls(&client_cert)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;

    let shutdown = Arc::new(Notify::new());
    let incoming = provider::serve::incoming(listener, tls.config.clone());
    let server = provider::serve::router(shutdown.clone());
    let line = format!(
        "1|6|tcp|{address}|grpc|{}\n",
        STANDARD_NO_PAD.encode(&tls.certificate)
    );
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the handshake: {e}"))?;
    drop(stdout);

    let parent = std::os::unix::process::parent_id();
    let orphaned = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                return;
            }
        }
    };
    let stop = async move {
        tokio::select! {
            () = shutdown.notified() => {}
            () = orphaned => {}
        }
    };
    server
        .serve_with_incoming_shutdown(incoming, stop)
        .await
        .map_err(|e| format!("serving: {e}"))
}
