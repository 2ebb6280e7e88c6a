//! Helpers the kubesim test binaries share.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::wait;
use std::time::Duration;

/// Creates Karpenter's generated CRDs and waits until each is Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in karpenter_api::crd::all() {
        let name = crd.metadata.name.clone().unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
        let established =
            wait::await_condition(crds.clone(), &name, wait::conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(10), established)
            .await
            .unwrap()
            .unwrap();
    }
}
