//! # karpenter-aws
//!
//! AWS plumbing the three programs share, with no Karpenter logic in it:
//!
//! - [`sdk`]: how a program loads its AWS configuration (credential chain,
//!   TLS verified, timeouts on every call).
//! - [`interruption_rules`]: the EventBridge rules that feed the
//!   interruption queue (the bootstrap creates them; the controller reads
//!   what they deliver).

pub mod interruption_rules;
pub mod sdk;
