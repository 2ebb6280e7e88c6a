//! The controller's Helm release, installed and upgraded without the helm
//! binary but stored exactly as Helm stores it ([`crate::helm::storage`]),
//! so `helm list/status/history/get values/upgrade/uninstall` work on it.
//!
//! Each run renders the chart with the values, compares the result with the
//! release's current revision and only writes a new revision when the
//! manifest, the values or the chart changed. A revision is recorded as
//! `pending-install`/`pending-upgrade` before its objects are applied and
//! marked `deployed` after, as Helm does; a run killed in between leaves a
//! pending revision that the next run finishes. Objects are applied
//! server-side with Helm's field manager (`helm`) and Helm's ownership
//! label and annotations, and the release records `apply_method: ssa`, so
//! a later `helm upgrade` keeps applying them the same way.

use crate::helm::chart::Chart;
use crate::helm::render::{self, Document, ReleaseInfo};
use crate::helm::storage::{self, Info, Release, Status};
use crate::{Action, Change, Error, Mode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The field manager Helm's own client applies with, so `helm upgrade`
/// finds itself owning the fields it set.
pub const HELM_FIELD_MANAGER: &str = "helm";

/// How many revisions are kept, as `helm upgrade --history-max` defaults.
pub const MAX_HISTORY: usize = 10;

/// The release to install: where, and with which values.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    /// The release's name (`karpenter`); also the objects' name.
    pub name: String,
    /// Its namespace (`kube-system`).
    pub namespace: String,
    /// The values given to the chart (merged over its `values.yaml`).
    pub values: Value,
}

impl ReleaseSpec {
    fn resource(&self) -> String {
        format!("helm-release {}/{}", self.namespace, self.name)
    }

    fn info(&self, revision: u32) -> ReleaseInfo<'_> {
        ReleaseInfo {
            name: &self.name,
            namespace: &self.namespace,
            revision,
        }
    }
}

/// Every revision of the release, oldest first.
pub async fn history(client: &kube::Client, spec: &ReleaseSpec) -> Result<Vec<Release>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
    let listed = secrets
        .list(&ListParams::default().labels(&storage::selector(&spec.name)))
        .await
        .map_err(|e| Error::kube(&spec.resource(), "list secrets", e))?;
    let mut releases = listed
        .items
        .iter()
        .map(|s| {
            storage::from_secret(s).map_err(|e| Error::Chart {
                message: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    releases.sort_by_key(|r| r.version);
    Ok(releases)
}

/// Plans or converges the release; see the module docs.
pub async fn reconcile(
    client: &kube::Client,
    spec: &ReleaseSpec,
    mode: Mode,
) -> Result<Change, Error> {
    let resource = spec.resource();
    let chart = Chart::embedded();
    let history = history(client, spec).await?;
    let latest = history.last();
    let next = latest.map_or(1, |r| r.version + 1);
    let documents =
        render::render(&chart, spec.info(next), &spec.values).map_err(|e| Error::Chart {
            message: e.to_string(),
        })?;
    let manifest = render::manifest(&documents);
    let chart_record = storage::chart_record(&chart);
    let mut objects = Objects::new(client, &spec.namespace);

    let same = |r: &Release| {
        r.manifest == manifest && r.config == spec.values && r.chart["metadata"] == chart.metadata
    };
    let action = match latest {
        Some(r) if r.info.status == Status::Deployed && same(r) => {
            let missing = objects.missing(&documents).await?;
            if missing.is_empty() {
                return Ok(Change {
                    resource,
                    action: Action::Unchanged,
                });
            }
            if mode == Mode::Apply {
                objects.apply_all(spec, &documents).await?;
            }
            return Ok(Change {
                resource,
                action: Action::Update(missing.iter().map(|m| format!("recreate {m}")).collect()),
            });
        }
        Some(r) if r.info.status.is_pending() && same(r) => {
            if mode == Mode::Apply {
                objects.apply_all(spec, &documents).await?;
                let deployed = previous_deployed(&history, r.version);
                finish(client, spec, r.clone(), deployed, &mut objects).await?;
            }
            return Ok(Change {
                resource,
                action: Action::Update(vec![format!("finish revision {}", r.version)]),
            });
        }
        None => Action::Create,
        Some(r) if r.info.status == Status::Uninstalled => Action::Create,
        Some(r) => Action::Update(differences(
            r,
            &manifest,
            &spec.values,
            &chart.metadata,
            next,
        )),
    };
    if mode == Mode::Plan {
        return Ok(Change { resource, action });
    }
    let now = jiff::Timestamp::now().to_string();
    let deployed = history
        .iter()
        .rev()
        .find(|r| r.info.status == Status::Deployed)
        .cloned();
    let first_deployed = deployed
        .as_ref()
        .map_or(now.clone(), |r| r.info.first_deployed.clone());
    let upgrade = deployed.is_some();
    let release = Release {
        name: spec.name.clone(),
        info: Info {
            first_deployed,
            last_deployed: now,
            deleted: String::new(),
            description: if upgrade {
                "Upgrade complete"
            } else {
                "Install complete"
            }
            .into(),
            status: if upgrade {
                Status::PendingUpgrade
            } else {
                Status::PendingInstall
            },
            notes: String::new(),
        },
        chart: chart_record,
        config: spec.values.clone(),
        manifest,
        hooks: Vec::new(),
        version: next,
        namespace: spec.namespace.clone(),
        apply_method: Some("ssa".into()),
    };
    write_revision(client, spec, &release, true).await?;
    objects.apply_all(spec, &documents).await?;
    finish(client, spec, release, deployed, &mut objects).await?;
    prune(client, spec, &history, next).await?;
    Ok(Change { resource, action })
}

/// What differs between revision `r` and what this run would install.
fn differences(
    r: &Release,
    manifest: &str,
    values: &Value,
    meta: &Value,
    next: u32,
) -> Vec<String> {
    let mut fields = vec![format!("revision {next}")];
    if r.chart["metadata"] != *meta {
        fields.push("chart".into());
    }
    if r.config != *values {
        fields.push("values".into());
    }
    if r.manifest != manifest {
        fields.push("manifest".into());
    }
    if r.info.status != Status::Deployed {
        fields.push(format!("replaces a {} revision", r.info.status.as_str()));
    }
    fields
}

/// The last deployed revision before `version`, if any.
fn previous_deployed(history: &[Release], version: u32) -> Option<Release> {
    history
        .iter()
        .rev()
        .find(|r| r.version < version && r.info.status == Status::Deployed)
        .cloned()
}

/// Marks `release` deployed and `deployed` (the revision it replaces)
/// superseded, after deleting the objects only the old one had.
async fn finish(
    client: &kube::Client,
    spec: &ReleaseSpec,
    mut release: Release,
    deployed: Option<Release>,
    objects: &mut Objects,
) -> Result<(), Error> {
    if let Some(mut old) = deployed {
        let keep: Vec<Value> = render::parse_manifest(&release.manifest);
        for stale in render::parse_manifest(&old.manifest)
            .iter()
            .filter(|o| !keep.iter().any(|k| same_object(k, o)))
        {
            objects.delete(spec, stale).await?;
        }
        old.info.status = Status::Superseded;
        write_revision(client, spec, &old, false).await?;
    }
    release.info.status = Status::Deployed;
    write_revision(client, spec, &release, false).await
}

/// Whether two manifest objects are the same object (kind, name, namespace).
fn same_object(a: &Value, b: &Value) -> bool {
    let key = |o: &Value| {
        (
            o["apiVersion"].clone(),
            o["kind"].clone(),
            o["metadata"]["name"].clone(),
            o["metadata"]["namespace"].clone(),
        )
    };
    key(a) == key(b)
}

/// Creates (`create`) or overwrites a revision's Secret.
async fn write_revision(
    client: &kube::Client,
    spec: &ReleaseSpec,
    release: &Release,
    create: bool,
) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
    let secret = storage::to_secret(release, jiff::Timestamp::now().as_second());
    let name = storage::secret_name(&spec.name, release.version);
    let err = |call: &'static str, e: kube::Error| Error::kube(&spec.resource(), call, e);
    if create {
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(err("create release secret", e)),
        }
    }
    secrets
        .patch(&name, &PatchParams::default(), &Patch::Merge(&secret))
        .await
        .map_err(|e| err("update release secret", e))?;
    Ok(())
}

/// Deletes revisions beyond the newest [`MAX_HISTORY`].
async fn prune(
    client: &kube::Client,
    spec: &ReleaseSpec,
    history: &[Release],
    newest: u32,
) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
    let keep_from = newest.saturating_sub(u32::try_from(MAX_HISTORY).unwrap_or(u32::MAX) - 1);
    for old in history.iter().filter(|r| r.version < keep_from) {
        let name = storage::secret_name(&spec.name, old.version);
        match secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::kube(&spec.resource(), "delete old revision", e)),
        }
    }
    Ok(())
}

/// Removes the release: its objects (last installed first), then every
/// revision's Secret, as `helm uninstall` does. `None` when there is none.
pub async fn uninstall(
    client: &kube::Client,
    spec: &ReleaseSpec,
    mode: Mode,
) -> Result<Option<Change>, Error> {
    let history = history(client, spec).await?;
    let Some(latest) = history.last() else {
        return Ok(None);
    };
    if mode == Mode::Apply {
        let mut objects = Objects::new(client, &spec.namespace);
        for object in render::parse_manifest(&latest.manifest).iter().rev() {
            objects.delete(spec, object).await?;
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
        for release in &history {
            let name = storage::secret_name(&spec.name, release.version);
            match secrets.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::kube(&spec.resource(), "delete release secret", e)),
            }
        }
    }
    Ok(Some(Change {
        resource: spec.resource(),
        action: Action::Delete,
    }))
}

/// How the controller's Deployment is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// Replicas asked for.
    pub wanted: i32,
    /// Replicas available.
    pub available: i32,
}

impl Availability {
    /// Every replica is available (and there is at least one).
    pub fn is_available(&self) -> bool {
        self.wanted > 0 && self.available >= self.wanted
    }
}

/// The Deployment the chart installs, as it is now; `None` when absent.
pub async fn availability(
    client: &kube::Client,
    spec: &ReleaseSpec,
) -> Result<Option<Availability>, Error> {
    let chart = Chart::embedded();
    let documents =
        render::render(&chart, spec.info(1), &spec.values).map_err(|e| Error::Chart {
            message: e.to_string(),
        })?;
    let Some(name) = documents
        .iter()
        .find(|d| d.object["kind"] == "Deployment")
        .and_then(|d| d.object["metadata"]["name"].as_str().map(str::to_string))
    else {
        return Ok(None);
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
    let found = deployments
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(&format!("deployment {}/{name}", spec.namespace), "get", e))?;
    Ok(found.map(|d| {
        let current =
            d.metadata.generation <= d.status.as_ref().and_then(|s| s.observed_generation);
        Availability {
            wanted: d.spec.and_then(|s| s.replicas).unwrap_or(1),
            available: if current {
                d.status.and_then(|s| s.available_replicas).unwrap_or(0)
            } else {
                0
            },
        }
    }))
}

/// Waits up to `timeout` for the Deployment to be available, telling
/// `progress` each time the count of available replicas changes.
pub async fn wait_available(
    client: &kube::Client,
    spec: &ReleaseSpec,
    timeout: Duration,
    mut progress: impl FnMut(&Availability),
) -> Result<(), Error> {
    let began = Instant::now();
    let mut last = None;
    loop {
        let now = availability(client, spec).await?;
        if let Some(a) = &now {
            if last.as_ref() != Some(a) {
                progress(a);
            }
            if a.is_available() {
                return Ok(());
            }
        }
        if began.elapsed() >= timeout {
            return Err(Error::Chart {
                message: format!(
                    "the controller's Deployment in {} is not available after {timeout:?}; \
                     see `kubectl -n {} describe deployment {}` and its pods' events",
                    spec.namespace, spec.namespace, spec.name
                ),
            });
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The cluster's objects of the release, reached through discovery.
struct Objects {
    client: kube::Client,
    namespace: String,
    kinds: HashMap<(String, String), (ApiResource, ApiCapabilities)>,
}

impl Objects {
    fn new(client: &kube::Client, namespace: &str) -> Self {
        Objects {
            client: client.clone(),
            namespace: namespace.to_string(),
            kinds: HashMap::new(),
        }
    }

    /// The API for `object` and its name, through discovery (cached).
    async fn api_for(&mut self, object: &Value) -> Result<(Api<DynamicObject>, String), Error> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let what = format!("{kind} {name}");
        let key = (api_version.clone(), kind.clone());
        if !self.kinds.contains_key(&key) {
            let (group, version) = match api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), api_version.clone()),
            };
            let gvk = GroupVersionKind {
                group,
                version,
                kind,
            };
            let found = kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|e| Error::kube(&what, "discover", e))?;
            self.kinds.insert(key.clone(), found);
        }
        let (resource, caps) = &self.kinds[&key];
        let api = if caps.scope == Scope::Cluster {
            Api::all_with(self.client.clone(), resource)
        } else {
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(&self.namespace);
            Api::namespaced_with(self.client.clone(), namespace, resource)
        };
        Ok((api, name))
    }

    /// The objects of `documents` the cluster does not have, as `Kind name`.
    async fn missing(&mut self, documents: &[Document]) -> Result<Vec<String>, Error> {
        let mut missing = Vec::new();
        for doc in documents {
            let (api, name) = self.api_for(&doc.object).await?;
            let kind = doc.object["kind"].as_str().unwrap_or_default();
            let found = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(&format!("{kind} {name}"), "get", e))?;
            if found.is_none() {
                missing.push(format!("{kind}/{name}"));
            }
        }
        Ok(missing)
    }

    /// Applies every document, with Helm's ownership metadata.
    async fn apply_all(&mut self, spec: &ReleaseSpec, documents: &[Document]) -> Result<(), Error> {
        for doc in documents {
            let mut object = doc.object.clone();
            let meta = &mut object["metadata"];
            meta["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
            meta["annotations"]["meta.helm.sh/release-name"] = json!(spec.name);
            meta["annotations"]["meta.helm.sh/release-namespace"] = json!(spec.namespace);
            let (api, name) = self.api_for(&object).await?;
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            let params = PatchParams::apply(HELM_FIELD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| Error::kube(&format!("{kind} {name}"), "apply", e))?;
        }
        Ok(())
    }

    /// Deletes `object`; gone already is fine.
    async fn delete(&mut self, spec: &ReleaseSpec, object: &Value) -> Result<(), Error> {
        let (api, name) = self.api_for(object).await?;
        let kind = object["kind"].as_str().unwrap_or_default();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(Error::kube(
                &format!("{kind} {name} of {}", spec.resource()),
                "delete",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_the_same_by_kind_name_and_namespace() {
        let a = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "k", "namespace": "n"}});
        let mut b = a.clone();
        b["spec"] = json!({"type": "ClusterIP"});
        assert!(same_object(&a, &b));
        b["metadata"]["name"] = json!("other");
        assert!(!same_object(&a, &b));
    }

    #[test]
    fn availability_needs_every_wanted_replica() {
        assert!(
            Availability {
                wanted: 2,
                available: 2
            }
            .is_available()
        );
        assert!(
            !Availability {
                wanted: 2,
                available: 1
            }
            .is_available()
        );
        assert!(
            !Availability {
                wanted: 0,
                available: 0
            }
            .is_available()
        );
    }
}
