//! Code generated from `proto/` by `build.rs`.

#![allow(missing_docs, dead_code, clippy::all, clippy::pedantic)]

/// Terraform's plugin protocol 6 (the subset in `proto/tfplugin6.proto`).
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller and stdio services.
pub mod plugin {
    tonic::include_proto!("plugin");
}
