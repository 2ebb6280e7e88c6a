//! The data sources: the controller policy (pure), the instance type
//! catalog (pure), and one NodePool as the cluster has it.

use crate::error::ResourceError;
mod controller_policy;
mod instance_types;
mod nodepool;

use crate::cty::Value;
use crate::schema::Block;

/// A data source type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// `karpenter_controller_policy`.
    ControllerPolicy,
    /// `karpenter_instance_types`.
    InstanceTypes,
    /// `karpenter_nodepool`.
    NodePool,
}

impl DataSource {
    /// Every data source.
    pub const ALL: [DataSource; 3] = [
        DataSource::ControllerPolicy,
        DataSource::InstanceTypes,
        DataSource::NodePool,
    ];

    /// Its type name.
    pub fn type_name(self) -> &'static str {
        match self {
            DataSource::ControllerPolicy => "karpenter_controller_policy",
            DataSource::InstanceTypes => "karpenter_instance_types",
            DataSource::NodePool => "karpenter_nodepool",
        }
    }

    /// The data source named `name`.
    pub fn named(name: &str) -> Option<DataSource> {
        DataSource::ALL.into_iter().find(|d| d.type_name() == name)
    }

    /// Its schema.
    pub fn schema(self) -> Block {
        match self {
            DataSource::ControllerPolicy => controller_policy::schema(),
            DataSource::InstanceTypes => instance_types::schema(),
            DataSource::NodePool => nodepool::schema(),
        }
    }

    /// Whether reading it needs the cluster.
    pub fn needs_cluster(self) -> bool {
        self == DataSource::NodePool
    }

    /// Reads it for `config` (the cluster client when it needs one).
    pub async fn read(
        self,
        config: &Value,
        client: Option<&kube::Client>,
    ) -> Result<Value, ResourceError> {
        match (self, client) {
            (DataSource::ControllerPolicy, _) => controller_policy::read(config),
            (DataSource::InstanceTypes, _) => instance_types::read(config),
            (DataSource::NodePool, Some(client)) => nodepool::read(config, client).await,
            (DataSource::NodePool, None) => Err("the cluster is not configured".into()),
        }
    }
}

/// `config` with attribute `name` set.
fn with(config: &Value, values: Vec<(&str, Value)>) -> Value {
    let mut out = config.clone();
    if let Value::Map(map) = &mut out {
        for (name, value) in values {
            map.insert(name.to_string(), value);
        }
    }
    out
}
