//! What every Karpenter object resource does the same way: the schema
//! (`name`, `id`, the spec's fields, computed status), a plan that validates
//! and defaults without calling the cluster, apply by server-side apply,
//! read that notices changes and deletion, and import by name.

use super::status::StatusAttr;
use crate::cty::Type;
use crate::cty::Value;
use crate::error::ResourceError;
use crate::mapping::{self, Field, PathStep, Shape};
use crate::schema::{Attribute, Block, Presence};
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value as Json, json};

/// Problems found by validation: (JSON path, rule broken).
pub type Problems = Vec<(String, String)>;

/// A Karpenter kind managed as a Terraform resource.
pub struct Kind {
    /// The resource type (`karpenter_nodepool`).
    pub type_name: &'static str,
    /// `karpenter.sh/v1`.
    pub api_version: &'static str,
    /// `NodePool`.
    pub kind: &'static str,
    /// `nodepools`.
    pub plural: &'static str,
    /// The resource's documentation.
    pub description: &'static str,
    /// The spec's fields.
    pub fields: fn() -> Vec<Field>,
    /// Defaults and validates a whole object (problems as JSON path and rule).
    pub check: fn(&Json) -> Result<Json, Problems>,
    /// The spec the API server would default an otherwise empty object to.
    pub default_spec: fn() -> Json,
    /// Adds what the API requires even when empty (`requirements: []`).
    pub complete: fn(&mut Json),
    /// The label NodeClaims carry naming the object (`karpenter.sh/nodepool`):
    /// then deleting may wait for them to be gone (`wait_for_nodes_on_delete`).
    pub nodeclaim_label: Option<&'static str>,
    /// The computed attributes read from `status`.
    pub status: fn() -> Vec<StatusAttr>,
}

/// Provider-side settings, not part of the object.
const SETTINGS: [&str; 2] = ["wait_for_nodes_on_delete", "delete_timeout"];

/// How long a delete waits for the nodes by default.
const DEFAULT_DELETE_TIMEOUT: &str = "10m";

/// A problem with a configuration, at a Terraform attribute path.
#[derive(Debug, Clone)]
pub struct Problem {
    /// One line.
    pub summary: String,
    /// The rule broken.
    pub detail: String,
    /// Where (empty: the whole resource).
    pub path: Vec<PathStep>,
}

impl Kind {
    /// The resource's schema.
    pub fn schema(&self) -> Block {
        let computed =
            |name, ty, description| Attribute::new(name, ty, Presence::Computed, description);
        let mut extra = vec![
            Attribute::new(
                "name",
                Type::String,
                Presence::Required,
                "The object's name; changing it replaces the object.",
            ),
            computed("id", Type::String, "The object's name."),
        ];
        for attr in (self.status)() {
            extra.push(computed(attr.name, attr.ty, attr.description));
        }
        if self.nodeclaim_label.is_some() {
            extra.push(Attribute::new(
                "wait_for_nodes_on_delete",
                Type::Bool,
                Presence::Optional,
                "On destroy, wait until the controller has drained and removed the pool's nodes.",
            ));
            extra.push(Attribute::new(
                "delete_timeout",
                Type::String,
                Presence::Optional,
                "How long that wait may take (default `10m`).",
            ));
        }
        mapping::block(&(self.fields)(), extra, self.description)
    }

    fn object(&self, name: &str, spec: serde_json::Map<String, Json>) -> Json {
        let mut spec = Json::Object(spec);
        (self.complete)(&mut spec);
        json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": name},
            "spec": spec,
        })
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", self.api_version));
        let gvk = GroupVersionKind::gvk(group, version, self.kind);
        Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(&gvk, self.plural),
        )
    }

    /// Plans a create or an update (never calls the cluster). Validation
    /// runs once the configuration is wholly known.
    pub fn plan(
        &self,
        prior: &Value,
        proposed: &Value,
    ) -> Result<(Value, Vec<Vec<PathStep>>), Vec<Problem>> {
        let fields = (self.fields)();
        let mut planned = proposed.clone();
        let name = proposed.get("name").clone();
        let defaulted = if proposed.has_unknown() {
            None
        } else {
            let object = self.object(
                name.as_str().unwrap_or_default(),
                mapping::to_json(proposed, &fields),
            );
            Some((self.check)(&object).map_err(|problems| self.problems(problems, &fields))?)
        };
        let server_spec = defaulted.as_ref().map(|d| d["spec"].clone());
        fill_defaults(&mut planned, server_spec.as_ref(), &fields);
        let unchanged = matches!(prior, Value::Map(_))
            && mapping::to_json(prior, &fields) == mapping::to_json(&planned, &fields);
        if let Value::Map(map) = &mut planned {
            map.insert("id".into(), name.clone());
            for attr in (self.status)().iter().map(|a| a.name) {
                let value = if unchanged {
                    prior.get(attr).clone()
                } else {
                    Value::Unknown
                };
                map.insert(attr.into(), value);
            }
        }
        let replace = match prior {
            Value::Map(_) if prior.get("name") != &name => {
                vec![vec![PathStep::Attribute("name".into())]]
            }
            _ => Vec::new(),
        };
        Ok((planned, replace))
    }

    fn problems(&self, problems: Vec<(String, String)>, fields: &[Field]) -> Vec<Problem> {
        problems
            .into_iter()
            .map(|(path, rule)| {
                let steps = match path.strip_prefix("spec.") {
                    Some(spec_path) => mapping::tf_path(spec_path, fields),
                    None if path == "metadata.name" => vec![PathStep::Attribute("name".into())],
                    None => Vec::new(),
                };
                Problem {
                    summary: format!("invalid {}: {path}", self.kind),
                    detail: rule,
                    path: steps,
                }
            })
            .collect()
    }

    /// Creates or updates the object as planned (server-side apply, forced,
    /// as `field_manager`) and returns the new state.
    pub async fn apply(
        &self,
        client: &kube::Client,
        field_manager: &str,
        planned: &Value,
    ) -> Result<Value, ResourceError> {
        let fields = (self.fields)();
        let name = planned
            .get("name")
            .as_str()
            .ok_or("name is unknown at apply")?;
        let object = self.object(name, mapping::to_json(planned, &fields));
        let applied = self
            .api(client)
            .patch(
                name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(|e| ResourceError::kube(format_args!("applying {} {name}", self.kind), &e))?;
        let mut server = serde_json::to_value(&applied).map_err(|e| e.to_string())?;
        let defaults = (self.default_spec)();
        // Fields another writer added are not ours to drop by server-side
        // apply: remove them explicitly (server defaults stay).
        if let Some(removals) = removals(&server["spec"], &object["spec"], &defaults) {
            let patched = self
                .api(client)
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": removals})),
                )
                .await
                .map_err(|e| {
                    ResourceError::kube(
                        format_args!(
                            "removing fields set outside Terraform from {} {name}",
                            self.kind
                        ),
                        &e,
                    )
                })?;
            server = serde_json::to_value(&patched).map_err(|e| e.to_string())?;
        }
        Ok(self.state(&server, Shape::Like(planned, &defaults), Some(planned)))
    }

    /// The object as it is now, shaped like `prior`; null when it is gone.
    pub async fn read(&self, client: &kube::Client, prior: &Value) -> Result<Value, ResourceError> {
        let name = prior.get("name").as_str().unwrap_or_default().to_string();
        let found =
            self.api(client).get_opt(&name).await.map_err(|e| {
                ResourceError::kube(format_args!("reading {} {name}", self.kind), &e)
            })?;
        Ok(match found {
            None => Value::Null,
            Some(object) => {
                let server = serde_json::to_value(&object).map_err(|e| e.to_string())?;
                let defaults = (self.default_spec)();
                self.state(&server, Shape::Like(prior, &defaults), None)
            }
        })
    }

    /// The state of the object named `id`, for `terraform import`.
    pub async fn import(&self, client: &kube::Client, id: &str) -> Result<Value, ResourceError> {
        let found = self
            .api(client)
            .get_opt(id)
            .await
            .map_err(|e| ResourceError::kube(format_args!("reading {} {id}", self.kind), &e))?
            .ok_or_else(|| format!("there is no {} named {id:?} in the cluster", self.kind))?;
        let server = serde_json::to_value(&found).map_err(|e| e.to_string())?;
        let defaults = (self.default_spec)();
        Ok(self.state(&server, Shape::Import(&defaults), None))
    }

    /// Deletes the object (gone already is fine), then, when asked, waits
    /// for the NodeClaims labelled with its name to be gone.
    pub async fn delete(&self, client: &kube::Client, prior: &Value) -> Result<(), ResourceError> {
        let name = prior.get("name").as_str().unwrap_or_default();
        match self
            .api(client)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(ResourceError::kube(
                    format_args!("deleting {} {name}", self.kind),
                    &e,
                ));
            }
        }
        let (Some(label), Value::Bool(true)) =
            (self.nodeclaim_label, prior.get("wait_for_nodes_on_delete"))
        else {
            return Ok(());
        };
        let timeout_text = prior
            .get("delete_timeout")
            .as_str()
            .unwrap_or(DEFAULT_DELETE_TIMEOUT);
        let timeout = karpenter_api::duration::parse(timeout_text)
            .map_err(|e| format!("delete_timeout {timeout_text:?}: {e}"))?;
        let nodeclaim = GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
        let claims: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(&nodeclaim, "nodeclaims"),
        );
        let selector = kube::api::ListParams::default().labels(&format!("{label}={name}"));
        let began = std::time::Instant::now();
        loop {
            let left = claims
                .list(&selector)
                .await
                .map_err(|e| format!("listing the NodeClaims of {name}: {e}"))?
                .items
                .len();
            if left == 0 {
                return Ok(());
            }
            if began.elapsed() >= timeout {
                return Err(ResourceError::Kube {
                    message: format!(
                        "{} {name} is deleted but {left} of its NodeClaims are still there after \
                         {timeout_text}; is the controller running? (raise delete_timeout, or see \
                         `kubectl get nodeclaims -l {label}={name}`)",
                        self.kind
                    ),
                    retryable: true,
                });
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }

    /// The state for a server object; with `planned`, every known planned
    /// value is kept as it was planned and only the unknown ones are filled.
    fn state(&self, server: &Json, shape: Shape<'_>, planned: Option<&Value>) -> Value {
        let fields = (self.fields)();
        let mut state = mapping::from_json(&server["spec"], &fields, shape);
        if let Some(planned) = planned {
            state = keep_known(planned, &state);
        }
        let settings_from = planned.or(match shape {
            Shape::Like(like, _) => Some(like),
            Shape::Import(_) => None,
        });
        if let (Value::Map(map), true) = (&mut state, self.nodeclaim_label.is_some()) {
            for setting in SETTINGS {
                let value = settings_from.map_or(Value::Null, |from| from.get(setting).clone());
                map.insert(setting.into(), value);
            }
        }
        let name = server["metadata"]["name"].as_str().unwrap_or_default();
        let status = &server["status"];
        if let Value::Map(map) = &mut state {
            map.insert("name".into(), Value::String(name.to_string()));
            map.insert("id".into(), Value::String(name.to_string()));
            for attr in (self.status)() {
                map.insert(attr.name.into(), (attr.read)(status));
            }
        }
        state
    }
}

/// A merge patch nulling what `server` has and `desired` lacks, except
/// values equal to the server's `defaults`; `None` when there is nothing.
fn removals(server: &Json, desired: &Json, defaults: &Json) -> Option<Json> {
    let (Json::Object(server), Json::Object(desired)) = (server, desired) else {
        return None;
    };
    let mut patch = serde_json::Map::new();
    for (key, value) in server {
        match desired.get(key) {
            None if value != &defaults[key] => {
                patch.insert(key.clone(), Json::Null);
            }
            Some(wanted @ Json::Object(_)) => {
                if let Some(inner) = removals(value, wanted, &defaults[key]) {
                    patch.insert(key.clone(), inner);
                }
            }
            _ => {}
        }
    }
    (!patch.is_empty()).then_some(Json::Object(patch))
}

/// Fills every optional-and-computed attribute the plan leaves null: with
/// the server's default when the whole configuration is known, else unknown.
fn fill_defaults(planned: &mut Value, defaulted: Option<&Json>, fields: &[Field]) {
    let Value::Map(map) = planned else { return };
    for field in fields {
        let Some(slot) = map.get_mut(field.tf()) else {
            continue;
        };
        let server = defaulted.map(|d| {
            &d[match field {
                Field::Attr { json, .. } | Field::Block { json, .. } => *json,
            }]
        });
        match field {
            Field::Attr {
                presence: Presence::OptionalComputed,
                ty,
                ..
            } if *slot == Value::Null => {
                *slot = match server {
                    Some(json) => mapping::scalar_from_json(json, ty),
                    None => Value::Unknown,
                };
            }
            Field::Block {
                nesting: crate::schema::Nesting::Single,
                fields,
                ..
            } => {
                fill_defaults(slot, server, fields);
            }
            Field::Block { fields, .. } => {
                if let Value::List(items) = slot {
                    for (i, item) in items.iter_mut().enumerate() {
                        fill_defaults(item, server.map(|s| &s[i]), fields);
                    }
                }
            }
            Field::Attr { .. } => {}
        }
    }
}

/// `planned` with its unknown parts taken from `actual`.
fn keep_known(planned: &Value, actual: &Value) -> Value {
    match (planned, actual) {
        (Value::Unknown, actual) => actual.clone(),
        (Value::Map(p), Value::Map(a)) => Value::Map(
            p.iter()
                .map(|(k, v)| (k.clone(), keep_known(v, a.get(k).unwrap_or(&Value::Null))))
                .collect(),
        ),
        (Value::List(p), Value::List(a)) if p.len() == a.len() => {
            Value::List(p.iter().zip(a).map(|(p, a)| keep_known(p, a)).collect())
        }
        (planned, _) => planned.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_set_outside_terraform_are_removed_but_server_defaults_kept() {
        let server = json!({"userData": "hand-made", "role": "r",
                            "metadataOptions": {"httpTokens": "required"},
                            "kubelet": {"maxPods": 110, "podsPerCore": 4}});
        let desired = json!({"role": "r", "kubelet": {"maxPods": 110}});
        let defaults = json!({"metadataOptions": {"httpTokens": "required"}});
        assert_eq!(
            removals(&server, &desired, &defaults),
            Some(json!({"userData": null, "kubelet": {"podsPerCore": null}}))
        );
        assert_eq!(removals(&desired, &desired, &defaults), None);
    }
}
