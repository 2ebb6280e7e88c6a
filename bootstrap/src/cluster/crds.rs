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
