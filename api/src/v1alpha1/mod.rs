//! `karpenter.sh/v1alpha1`: NodeOverlay, upstream's alpha API for adjusting
//! the price and capacity the scheduler assumes for matching instance types.
//!
//! The CRD is served so that manifests and GitOps repositories written for
//! upstream apply unchanged; upstream only acts on overlays behind its
//! `NodeOverlay` feature gate (off by default), and this project refuses
//! that gate at start-up (see the README's "Upstream settings not
//! supported"), so an overlay here is stored and never applied, as upstream
//! does with the gate off.

mod nodeoverlay;

pub use nodeoverlay::*;
