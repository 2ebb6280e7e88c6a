//! Regenerates `catalog/data/us-east-1.json` from moto's instance data and the
//! on-demand price table.
//!
//! Usage: `cargo run -p karpenter-catalog --bin karpenter-catalog-gen -- [MOTO_EC2_RESOURCES_DIR]`
//! (default: the moto installed by `scripts/dev-env`).

use std::path::PathBuf;

fn main() {
    let crate_dir = &std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let moto = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| karpenter_catalog::generate::dev_env_moto_resources(crate_dir));
    let Some(moto) = moto else {
        eprintln!(
            "error: moto's EC2 resources not found\nhint: run scripts/dev-env, or pass the path to moto/ec2/resources"
        );
        std::process::exit(1);
    };
    let prices = crate_dir.join("data/ec2-on-demand-prices-us-east-1.csv");
    match karpenter_catalog::generate::from_moto(&moto, "us-east-1", &prices) {
        Ok(types) => {
            let out = crate_dir.join("data/us-east-1.json");
            if let Err(e) = std::fs::write(&out, karpenter_catalog::generate::to_json(&types)) {
                eprintln!("error: writing {}: {e}", out.display());
                std::process::exit(1);
            }
            println!("wrote {} instance types to {}", types.len(), out.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
