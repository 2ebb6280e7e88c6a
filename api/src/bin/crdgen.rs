//! Writes the Karpenter CRDs generated from the `api` types to `charts/karpenter/crds/`.
//!
//! Usage: `cargo run -p karpenter-api --bin karpenter-crdgen [OUTPUT_DIR]`

use std::path::PathBuf;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("../charts/karpenter/crds")
        });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    for (file, crd) in karpenter_api::crd::all() {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, karpenter_api::crd::to_yaml(&crd)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
