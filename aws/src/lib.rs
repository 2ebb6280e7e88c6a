//! # karpenter-aws
//!
//! AWS plumbing the three programs share, with no Karpenter logic in it:
//!
//! - [`sdk`]: how a program loads its AWS configuration (credential chain,
//!   TLS verified, timeouts on every call).
//! - [`iam`]: looking up roles and instance profiles that may not exist,
//!   IAM tag lists, putting a role into an instance profile.
//! - [`interruption_rules`]: the EventBridge rules that feed the
//!   interruption queue (the bootstrap creates them; the controller reads
//!   what they deliver).

pub mod iam;
pub mod interruption_rules;
pub mod sdk;
