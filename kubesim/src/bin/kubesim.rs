//! `kubesim serve`: an embedded Kubernetes API server for kubectl and local tools.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kubesim",
    version,
    about = "An embedded Kubernetes control plane for tests and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API over HTTPS (with the scheduler, kubelet and workload
    /// controllers running) and write a kubeconfig for it.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KUBESIM_ADDRESS", default_value = "127.0.0.1:6443")]
        address: SocketAddr,
        /// Where to write the kubeconfig.
        #[arg(long, env = "KUBESIM_KUBECONFIG", default_value = "kubesim.kubeconfig")]
        kubeconfig: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let Cli {
        command: Command::Serve {
            address,
            kubeconfig,
        },
    } = Cli::parse();
    let sim = kubesim::Kubesim::new();
    let _controllers = sim.start_controllers(kubesim::ControllerOptions::default());
    let served = match sim
        .serve(kubesim::ServeOptions {
            address,
            kubeconfig,
        })
        .await
    {
        Ok(served) => served,
        Err(e) => {
            eprintln!(
                "error: cannot serve on {address}: {e}\nhint: pick a free port with --address 127.0.0.1:0"
            );
            std::process::exit(1);
        }
    };
    println!("kubesim serving at {}", served.url());
    println!(
        "export KUBECONFIG={}",
        std::fs::canonicalize(&served.kubeconfig)
            .unwrap_or(served.kubeconfig.clone())
            .display()
    );
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("error: cannot wait for Ctrl-C");
    }
}
