//! The controller's Helm chart and Helm's release format, without the helm
//! binary: [`chart`] is `charts/karpenter` compiled in, [`render`] executes
//! its templates as Helm does (Go templates through `gtmpl`, with the
//! functions in `funcs.rs`), and [`storage`] reads and writes releases the
//! way Helm stores them, so `helm list/status/history/upgrade/uninstall`
//! work on a release the bootstrap installed.

pub mod chart;
mod funcs;
mod goyaml;
pub mod render;
pub mod storage;
