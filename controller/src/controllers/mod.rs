//! Controllers: one per concern, each a reconcile function over `kube::Client`
//! so it runs the same against a real cluster and against `kubesim`.

pub mod nodeclass;
