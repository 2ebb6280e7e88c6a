//! Karpenter's CRDs, generated from the `api` crate's types (the same ones
//! the chart ships in `crds/`), applied on every run so an upgrade of the
//! bootstrap upgrades them. Helm never upgrades CRDs in `crds/`; this is
//! how they stay current.
//!
//! Each CRD carries the hash of what was applied
//! ([`HASH_ANNOTATION`]), so a run that would change nothing makes no
//! write; a CRD edited by hand (its hash no longer matches its spec) is
//! applied again.

use super::FIELD_MANAGER;
use crate::{Action, Change, Error, Mode};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use sha2::{Digest, Sha256};

/// The annotation holding the hash of the spec the bootstrap applied.
pub const HASH_ANNOTATION: &str = "karpenter.sh/bootstrap-spec-hash";

/// The hash of a CRD's spec as JSON.
fn spec_hash(crd: &CustomResourceDefinition) -> String {
    let json = serde_json::to_vec(&crd.spec).expect("a CRD spec serializes");
    let digest = Sha256::digest(&json);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Plans or applies every CRD; returns what each needed.
pub async fn reconcile(client: &kube::Client, mode: Mode) -> Result<Vec<Change>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for (_, mut desired) in karpenter_api::crd::all() {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let resource = format!("crd {name}");
        let err = |call: &'static str, e: kube::Error| Error::kube(&resource, call, e);
        let hash = spec_hash(&desired);
        let existing = api.get_opt(&name).await.map_err(|e| err("get", e))?;
        let action = match &existing {
            None => Action::Create,
            Some(crd) => {
                let recorded = crd
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(HASH_ANNOTATION));
                let edited = spec_hash(crd) != hash;
                if recorded == Some(&hash) && !edited {
                    Action::Unchanged
                } else {
                    Action::Update(vec!["spec".into()])
                }
            }
        };
        if mode == Mode::Apply && action != Action::Unchanged {
            desired
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(HASH_ANNOTATION.into(), hash);
            desired.metadata.managed_fields = None;
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&desired))
                .await
                .map_err(|e| err("apply", e))?;
        }
        out.push(Change { resource, action });
    }
    Ok(out)
}

/// Removes the CRDs this bootstrap applied (they carry [`HASH_ANNOTATION`])
/// once no object of theirs is left: the last step of a teardown, after the
/// NodePools and EC2NodeClasses are gone and the controller is uninstalled.
/// A CRD that still has objects (a NodeOverlay someone kept, say) is left
/// with them, and so is one the bootstrap did not apply.
pub async fn remove(client: &kube::Client, mode: Mode) -> Result<Vec<Change>, Error> {
    use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for (_, desired) in karpenter_api::crd::all() {
        let name = desired.metadata.name.clone().unwrap_or_default();
        let resource = format!("crd {name}");
        let err = |call: &'static str, e: kube::Error| Error::kube(&resource, call, e);
        let Some(existing) = api.get_opt(&name).await.map_err(|e| err("get", e))? else {
            continue;
        };
        let ours = existing
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(HASH_ANNOTATION));
        if !ours {
            out.push(Change {
                resource,
                action: Action::Foreign,
            });
            continue;
        }
        let spec = &existing.spec;
        let version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let gvk = GroupVersionKind::gvk(&spec.group, &version, &spec.names.kind);
        let objects: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(&gvk, &spec.names.plural),
        );
        let left = objects
            .list(&ListParams::default().limit(1))
            .await
            .map_err(|e| err("list objects", e))?
            .items
            .len();
        if left > 0 {
            out.push(Change {
                resource: format!("{resource} (kept: {} objects are left)", spec.names.plural),
                action: Action::Unchanged,
            });
            continue;
        }
        if mode == Mode::Apply {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(err("delete", e)),
            }
        }
        out.push(Change {
            resource,
            action: Action::Delete,
        });
    }
    Ok(out)
}
