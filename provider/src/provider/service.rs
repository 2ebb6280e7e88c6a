//! The `tfplugin6.Provider` service: schema, validation, plan, apply, read
//! and import, dispatched to the resource types. Every Terraform command
//! starts the provider afresh, so nothing is kept between processes; the
//! cluster client is built on first use after `ConfigureProvider`.

use super::config;
use crate::cty::{self, Value};
use crate::data_sources::DataSource;
use crate::error::ResourceError;
use crate::mapping::PathStep;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider;
use crate::resources::{self, controller_role, crd::Kind, crd::Problem, node_role};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

/// A resource type: a Karpenter object in the cluster, or an IAM role.
enum Resource<'a> {
    Object(&'a Kind),
    NodeRole,
    ControllerRole,
}

impl Resource<'_> {
    fn schema(&self) -> crate::schema::Block {
        match self {
            Resource::Object(kind) => kind.schema(),
            Resource::NodeRole => node_role::schema(),
            Resource::ControllerRole => controller_role::schema(),
        }
    }
}

/// The default server-side apply field manager.
pub const FIELD_MANAGER: &str = "terraform-provider-karpenter";

/// The provider's state within one Terraform process.
pub struct Service {
    kinds: HashMap<&'static str, Kind>,
    config: Mutex<Option<Value>>,
    client: OnceCell<kube::Client>,
    iam: OnceCell<aws_sdk_iam::Client>,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            kinds: resources::all()
                .into_iter()
                .map(|k| (k.type_name, k))
                .collect(),
            config: Mutex::new(None),
            client: OnceCell::new(),
            iam: OnceCell::new(),
        }
    }
}

/// An error diagnostic for a failed operation; one that may pass when run
/// again says so.
pub fn failure(summary: &str, error: ResourceError) -> pb::Diagnostic {
    let detail = if error.retryable() {
        format!("{error} (temporary: run terraform apply again)")
    } else {
        error.to_string()
    };
    self::error(summary, detail)
}

/// An error diagnostic.
pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: None,
    }
}

fn path(steps: &[PathStep]) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: steps
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

fn problem(p: Problem) -> pb::Diagnostic {
    pb::Diagnostic {
        attribute: (!p.path.is_empty()).then(|| path(&p.path)),
        ..error(p.summary, p.detail)
    }
}

fn dynamic(value: &Value, ty: &cty::Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: cty::encode(value, ty),
        json: Vec::new(),
    })
}

impl Service {
    fn resource(&self, name: &str) -> Result<Resource<'_>, pb::Diagnostic> {
        if name == node_role::TYPE_NAME {
            return Ok(Resource::NodeRole);
        }
        if name == controller_role::TYPE_NAME {
            return Ok(Resource::ControllerRole);
        }
        self.kinds.get(name).map(Resource::Object).ok_or_else(|| {
            error(
                format!("unknown resource type {name:?}"),
                "this version of terraform-provider-karpenter does not have it",
            )
        })
    }

    /// The region the provider block or the environment names (plan time).
    fn region(&self) -> Option<String> {
        let config = self.config.lock().expect("config lock");
        config
            .as_ref()
            .and_then(|c| c.get("region").as_str().map(str::to_string))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
    }

    fn partition(&self) -> &'static str {
        crate::aws_client::partition(self.config.lock().expect("config lock").as_ref())
    }

    async fn iam(&self) -> Result<&aws_sdk_iam::Client, pb::Diagnostic> {
        let config = self.config.lock().expect("config lock").clone();
        self.iam
            .get_or_try_init(|| async {
                let config = config.ok_or("the provider was not configured")?;
                let sdk = crate::aws_client::sdk_config(&config).await?;
                Ok::<_, ResourceError>(aws_sdk_iam::Client::new(&sdk))
            })
            .await
            .map_err(|e| failure("cannot configure AWS", e))
    }

    fn plan_with(
        &self,
        resource: &Resource<'_>,
        prior: &Value,
        proposed: &Value,
    ) -> Result<(Value, Vec<Vec<PathStep>>), Vec<Problem>> {
        let (planned, replace) = match resource {
            Resource::Object(kind) => return kind.plan(prior, proposed),
            Resource::NodeRole => node_role::plan(prior, proposed, self.partition())?,
            Resource::ControllerRole => {
                controller_role::plan(prior, proposed, self.region().as_deref())?
            }
        };
        let replace = if replace {
            vec![vec![PathStep::Attribute("name".into())]]
        } else {
            Vec::new()
        };
        Ok((planned, replace))
    }

    /// An IAM role's state (`None` when it is gone), read shaped like `prior`;
    /// a failure is reported under `summary`.
    async fn read_role(
        &self,
        resource: &Resource<'_>,
        prior: &Value,
        summary: &str,
    ) -> Result<Option<Value>, pb::Diagnostic> {
        let iam = self.iam().await?;
        match resource {
            Resource::ControllerRole => controller_role::read(iam, prior).await,
            _ => node_role::read(iam, prior).await,
        }
        .map_err(|e| failure(summary, e))
    }

    async fn read_with(
        &self,
        resource: &Resource<'_>,
        prior: &Value,
    ) -> Result<Value, pb::Diagnostic> {
        match resource {
            Resource::Object(kind) => kind
                .read(self.client().await?, prior)
                .await
                .map_err(|e| failure("read failed", e)),
            _ => Ok(self
                .read_role(resource, prior, "read failed")
                .await?
                .unwrap_or(Value::Null)),
        }
    }

    async fn apply_with(
        &self,
        resource: &Resource<'_>,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, pb::Diagnostic> {
        if planned == &Value::Null {
            let failed = |e| failure("delete failed", e);
            match resource {
                Resource::Object(kind) => kind
                    .delete(self.client().await?, prior)
                    .await
                    .map_err(failed)?,
                Resource::NodeRole => node_role::delete(self.iam().await?, prior)
                    .await
                    .map_err(failed)?,
                Resource::ControllerRole => controller_role::delete(self.iam().await?, prior)
                    .await
                    .map_err(failed)?,
            }
            return Ok(Value::Null);
        }
        let failed = |e| failure("apply failed", e);
        match resource {
            Resource::Object(kind) => kind
                .apply(self.client().await?, &self.field_manager(), planned)
                .await
                .map_err(failed),
            Resource::NodeRole => {
                node_role::apply(self.iam().await?, prior, planned, self.partition())
                    .await
                    .map_err(failed)
            }
            Resource::ControllerRole => controller_role::apply(self.iam().await?, prior, planned)
                .await
                .map_err(failed),
        }
    }

    async fn import_with(
        &self,
        resource: &Resource<'_>,
        id: &str,
    ) -> Result<Value, pb::Diagnostic> {
        match resource {
            Resource::Object(kind) => kind
                .import(self.client().await?, id)
                .await
                .map_err(|e| failure("import failed", e)),
            _ => {
                let prior = Value::Map(std::collections::BTreeMap::from([(
                    "name".to_string(),
                    Value::String(id.to_string()),
                )]));
                self.read_role(resource, &prior, "import failed")
                    .await?
                    .ok_or_else(|| {
                        error(
                            "import failed",
                            format!("there is no IAM role named {id:?}"),
                        )
                    })
            }
        }
    }

    async fn client(&self) -> Result<&kube::Client, pb::Diagnostic> {
        let config = self.config.lock().expect("config lock").clone();
        self.client
            .get_or_try_init(|| async {
                let config = config.ok_or("the provider was not configured")?;
                crate::kube_client::client(&config).await
            })
            .await
            .map_err(|e| failure("cannot reach the cluster", e))
    }

    fn field_manager(&self) -> String {
        let config = self.config.lock().expect("config lock");
        config
            .as_ref()
            .and_then(|c| c.get("field_manager").as_str().map(str::to_string))
            .unwrap_or_else(|| FIELD_MANAGER.to_string())
    }
}

fn decode(value: Option<&pb::DynamicValue>, ty: &cty::Type) -> Result<Value, pb::Diagnostic> {
    match value {
        None => Ok(Value::Null),
        Some(v) => cty::decode(&v.msgpack, ty).map_err(|e| error("invalid value", e.to_string())),
    }
}

#[tonic::async_trait]
impl Provider for Service {
    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(config::schema().schema()),
            resource_schemas: self
                .kinds
                .values()
                .map(|k| (k.type_name.to_string(), k.schema().schema()))
                .chain([
                    (
                        node_role::TYPE_NAME.to_string(),
                        node_role::schema().schema(),
                    ),
                    (
                        controller_role::TYPE_NAME.to_string(),
                        controller_role::schema().schema(),
                    ),
                ])
                .collect(),
            data_source_schemas: DataSource::ALL
                .iter()
                .map(|d| (d.type_name().to_string(), d.schema().schema()))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
            }),
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let diagnostics = match self.resource(&request.type_name) {
            Err(d) => vec![d],
            Ok(resource) => match decode(request.config.as_ref(), &resource.schema().ty()) {
                Err(d) => vec![d],
                Ok(config) => match self.plan_with(&resource, &Value::Null, &config) {
                    Ok(_) => Vec::new(),
                    Err(problems) => problems.into_iter().map(problem).collect(),
                },
            },
        };
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let name = request.into_inner().type_name;
        let diagnostics = match DataSource::named(&name) {
            Some(_) => Vec::new(),
            None => vec![error(format!("unknown data source {name:?}"), "")],
        };
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let result = self.resource(&request.type_name).and_then(|resource| {
            let ty = resource.schema().ty();
            let json = request.raw_state.map(|r| r.json).unwrap_or_default();
            let value: serde_json::Value = serde_json::from_slice(&json)
                .map_err(|e| error("unreadable state", e.to_string()))?;
            Ok(dynamic(&from_state_json(&value, &ty), &ty))
        });
        let (upgraded_state, diagnostics) = match result {
            Ok(v) => (v, Vec::new()),
            Err(d) => (None, vec![d]),
        };
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let request = request.into_inner();
        let diagnostics = match decode(request.config.as_ref(), &config::schema().ty()) {
            Ok(value) => {
                *self.config.lock().expect("config lock") = Some(value);
                Vec::new()
            }
            Err(d) => vec![d],
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let request = request.into_inner();
        let result = async {
            let resource = self.resource(&request.type_name)?;
            let ty = resource.schema().ty();
            let prior = decode(request.current_state.as_ref(), &ty)?;
            let state = self.read_with(&resource, &prior).await?;
            Ok(dynamic(&state, &ty))
        }
        .await;
        let (new_state, diagnostics) = split(result);
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics,
            private: request.private,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let result = (|| {
            let resource = self.resource(&request.type_name)?;
            let ty = resource.schema().ty();
            let prior = decode(request.prior_state.as_ref(), &ty)?;
            let proposed = decode(request.proposed_new_state.as_ref(), &ty)?;
            if proposed == Value::Null {
                return Ok((dynamic(&Value::Null, &ty), Vec::new()));
            }
            let (planned, replace) = self
                .plan_with(&resource, &prior, &proposed)
                .map_err(|problems| problems.into_iter().map(problem).collect::<Vec<_>>())
                .map_err(Diagnostics)?;
            Ok((
                dynamic(&planned, &ty),
                replace.iter().map(|p| path(p)).collect(),
            ))
        })();
        let (planned_state, requires_replace, diagnostics) = match result {
            Ok((planned, replace)) => (planned, replace, Vec::new()),
            Err(Diagnostics(d)) => (None, Vec::new(), d),
        };
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace,
            planned_private: request.prior_private,
            diagnostics,
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let result = async {
            let resource = self.resource(&request.type_name)?;
            let ty = resource.schema().ty();
            let prior = decode(request.prior_state.as_ref(), &ty)?;
            let planned = decode(request.planned_state.as_ref(), &ty)?;
            let state = self.apply_with(&resource, &prior, &planned).await?;
            Ok(dynamic(&state, &ty))
        }
        .await;
        let (new_state, diagnostics) = split(result);
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: request.planned_private,
            diagnostics,
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let result = async {
            let resource = self.resource(&request.type_name)?;
            let ty = resource.schema().ty();
            let state = self.import_with(&resource, &request.id).await?;
            Ok(pb::import_resource_state::ImportedResource {
                type_name: request.type_name.clone(),
                state: dynamic(&state, &ty),
                private: Vec::new(),
            })
        }
        .await;
        let (imported_resources, diagnostics) = match result {
            Ok(r) => (vec![r], Vec::new()),
            Err(d) => (Vec::new(), vec![d]),
        };
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources,
            diagnostics,
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let result = async {
            let source = DataSource::named(&request.type_name)
                .ok_or_else(|| error(format!("unknown data source {:?}", request.type_name), ""))?;
            let ty = source.schema().ty();
            let config = decode(request.config.as_ref(), &ty)?;
            let client = match source.needs_cluster() {
                true => Some(self.client().await?),
                false => None,
            };
            let state = source
                .read(&config, client)
                .await
                .map_err(|e| failure(&format!("reading {}", request.type_name), e))?;
            Ok(dynamic(&state, &ty))
        }
        .await;
        let (state, diagnostics) = split(result);
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics,
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

/// Several diagnostics as one error.
struct Diagnostics(Vec<pb::Diagnostic>);

impl From<pb::Diagnostic> for Diagnostics {
    fn from(d: pb::Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

fn split<T: Default>(result: Result<T, pb::Diagnostic>) -> (T, Vec<pb::Diagnostic>) {
    match result {
        Ok(v) => (v, Vec::new()),
        Err(d) => (T::default(), vec![d]),
    }
}

/// A stored state's JSON (attribute names as in the schema) as a value.
fn from_state_json(json: &serde_json::Value, ty: &cty::Type) -> Value {
    use serde_json::Value as Json;
    match (json, ty) {
        (Json::Null, _) => Value::Null,
        (Json::Bool(b), _) => Value::Bool(*b),
        (Json::Number(n), _) => Value::Number(n.clone()),
        (Json::String(s), _) => Value::String(s.clone()),
        (Json::Array(items), cty::Type::List(t)) => {
            Value::List(items.iter().map(|i| from_state_json(i, t)).collect())
        }
        (Json::Object(map), cty::Type::Map(t)) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), from_state_json(v, t)))
                .collect(),
        ),
        (Json::Object(map), cty::Type::Object(attrs)) => Value::Map(
            attrs
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        from_state_json(map.get(k).unwrap_or(&Json::Null), t),
                    )
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}
