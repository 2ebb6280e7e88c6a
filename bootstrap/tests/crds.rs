//! The CRDs against kubesim: created on an empty cluster, left alone when
//! current (no write: the resourceVersion stays), and applied again when
//! they are older or were edited by hand.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use karpenter_bootstrap::cluster::crds::{HASH_ANNOTATION, reconcile};
use karpenter_bootstrap::{Action, Mode};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

async fn versions(api: &Api<CustomResourceDefinition>) -> Vec<String> {
    let mut out = Vec::new();
    for (_, crd) in karpenter_api::crd::all() {
        let name = crd.metadata.name.unwrap();
        out.push(
            api.get(&name)
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn crds_are_created_kept_and_upgraded() {
    let sim = kubesim::Kubesim::new();
    let client = sim.client();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());

    let plan = reconcile(&client, Mode::Plan).await.unwrap();
    assert_eq!(plan.len(), karpenter_api::crd::all().len());
    assert!(plan.iter().all(|c| c.action == Action::Create));
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    reconcile(&client, Mode::Apply).await.unwrap();
    let pools = api.get("nodepools.karpenter.sh").await.unwrap();
    assert!(
        pools
            .metadata
            .annotations
            .unwrap()
            .contains_key(HASH_ANNOTATION)
    );
    let managers: Vec<String> = pools
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "karpenter-bootstrap"),
        "{managers:?}"
    );

    let before = versions(&api).await;
    let again = reconcile(&client, Mode::Apply).await.unwrap();
    assert!(
        again.iter().all(|c| c.action == Action::Unchanged),
        "{again:?}"
    );
    assert_eq!(versions(&api).await, before, "a current CRD was written");

    // Edited by hand (a printer column dropped): found and put back.
    api.patch(
        "nodeclaims.karpenter.sh",
        &PatchParams::default(),
        &Patch::Json::<()>(json_patch::Patch(vec![
            json_patch::PatchOperation::Replace(json_patch::ReplaceOperation {
                path: "/spec/versions/0/additionalPrinterColumns".parse().unwrap(),
                value: json!([]),
            }),
        ])),
    )
    .await
    .unwrap();
    let drift = reconcile(&client, Mode::Plan).await.unwrap();
    let claims = drift
        .iter()
        .find(|c| c.resource == "crd nodeclaims.karpenter.sh")
        .unwrap();
    assert_eq!(claims.action, Action::Update(vec!["spec".into()]));
    reconcile(&client, Mode::Apply).await.unwrap();
    let restored = api.get("nodeclaims.karpenter.sh").await.unwrap();
    let (_, desired) = karpenter_api::crd::all()
        .into_iter()
        .find(|(_, c)| c.metadata.name.as_deref() == Some("nodeclaims.karpenter.sh"))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&restored.spec.versions[0].additional_printer_columns).unwrap(),
        serde_json::to_value(&desired.spec.versions[0].additional_printer_columns).unwrap()
    );
    let clean = reconcile(&client, Mode::Plan).await.unwrap();
    assert!(
        clean.iter().all(|c| c.action == Action::Unchanged),
        "{clean:?}"
    );
}
