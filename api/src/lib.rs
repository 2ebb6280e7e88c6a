//! # karpenter-api
//!
//! The Karpenter v1 API in Rust, wire-compatible with upstream Karpenter:
//!
//! - [`v1`]: `NodePool`, `NodeClaim` (`karpenter.sh/v1`) and `EC2NodeClass`
//!   (`karpenter.k8s.aws/v1`) as `kube` custom resources.
//! - [`defaults`]: the defaults upstream's CRDs declare, applied by one function
//!   per kind that the controller, the Terraform provider and kubesim all share.
//! - [`validation`]: upstream's OpenAPI and CEL rules, reporting every error of an
//!   object at once with its field path (`spec.template.spec.requirements[2].values`).
//! - [`requirements`]: the requirement algebra the scheduler works in.
//! - [`quantity`]: exact Kubernetes quantities.
//! - [`crd`]: CustomResourceDefinitions generated from the types.
//!
//! ```
//! use karpenter_api::{defaults, validation, v1::NodePool};
//! let mut pool: NodePool = serde_norway::from_str(r#"
//! apiVersion: karpenter.sh/v1
//! kind: NodePool
//! metadata: {name: default}
//! spec:
//!   template:
//!     spec:
//!       nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
//!       requirements:
//!         - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
//! "#).unwrap();
//! defaults::nodepool(&mut pool);
//! assert_eq!(pool.spec.template.spec.expire_after.as_deref(), Some("720h"));
//! assert!(validation::nodepool(&pool).is_ok());
//! ```

pub mod autoscaling;
pub mod crd;
pub mod defaults;
pub mod duration;
pub mod error;
pub use error::{Incompatible, Invalid};
pub mod labels;
pub mod quantity;
pub mod requirements;
pub mod schedule;
pub mod v1;
pub mod v1alpha1;
pub mod validation;
