//! The provider: its configuration, the gRPC service Terraform calls, and
//! the server it runs in.

pub mod config;
pub mod serve;
pub mod service;
