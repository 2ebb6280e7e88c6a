//! Cluster discovery against moto's EKS (which returns an endpoint, a CA and
//! the service CIDR, as EKS does) and kubesim (the `kube-dns` Service):
//! what the user data of every node is built from.

use base64::Engine;
use k8s_openapi::api::core::v1::Service;
use karpenter_controller::cloud::aws::cluster::{self, DiscoveryError, Overrides};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use test_support::{DevEnv, MotoServer, Part};

async fn eks_cluster(eks: &aws_sdk_eks::Client, name: &str, cidr: &str) -> (String, String) {
    let created = eks
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .kubernetes_network_config(
            aws_sdk_eks::types::KubernetesNetworkConfigRequest::builder()
                .service_ipv4_cidr(cidr)
                .build(),
        )
        .send()
        .await
        .expect("moto creates the EKS cluster")
        .cluster
        .expect("a cluster");
    (
        created.endpoint.expect("an endpoint"),
        created
            .certificate_authority
            .and_then(|c| c.data)
            .expect("a CA"),
    )
}

#[tokio::test]
async fn endpoint_ca_cidr_and_dns_come_from_eks_and_the_cluster() {
    let env = DevEnv::load();
    let Some(_) = env.require(Part::Python, "cluster_discovery") else {
        return;
    };
    let moto = MotoServer::start(&env).expect("moto starts");
    let config = test_support::aws::sdk_config(&moto.endpoint()).await;
    let eks = aws_sdk_eks::Client::new(&config);
    let (endpoint, ca) = eks_cluster(&eks, "prod", "172.20.0.0/16").await;
    let sim = kubesim::Kubesim::new();
    let kube = sim.client();

    // Without a kube-dns Service the address is derived from the CIDR, as nodeadm does.
    let found = cluster::discover(&eks, &kube, "prod", &Overrides::default(), None)
        .await
        .unwrap();
    assert_eq!(found.endpoint, endpoint);
    assert_eq!(found.ca_bundle, ca);
    assert_eq!(found.cidr.as_deref(), Some("172.20.0.0/16"));
    assert_eq!(found.dns_ip.as_deref(), Some("172.20.0.10"));

    // With one, its cluster IP (upstream reads kube-system/kube-dns).
    let services: Api<Service> = Api::namespaced(kube.clone(), "kube-system");
    let dns: Service = serde_json::from_value(json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "172.20.0.53", "ports": [{"port": 53, "protocol": "UDP"}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &dns).await.unwrap();
    let found = cluster::discover(&eks, &kube, "prod", &Overrides::default(), None)
        .await
        .unwrap();
    assert_eq!(found.dns_ip.as_deref(), Some("172.20.0.53"));

    // CLUSTER_ENDPOINT and CLUSTER_CA_BUNDLE win.
    let overrides = Overrides {
        endpoint: "https://private.example".into(),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode("pem"),
    };
    let found = cluster::discover(&eks, &kube, "prod", &overrides, None)
        .await
        .unwrap();
    assert_eq!(found.endpoint, "https://private.example");
    assert_eq!(found.ca_bundle, overrides.ca_bundle);
    assert_eq!(found.cidr.as_deref(), Some("172.20.0.0/16"));

    // A cluster EKS does not know: the error says what to set; with the
    // endpoint set, the CA the controller trusts is the fallback.
    let err = cluster::discover(&eks, &kube, "missing", &Overrides::default(), None)
        .await
        .unwrap_err();
    let DiscoveryError::Missing(message) = &err;
    assert!(
        message.contains("eks:DescribeCluster") && message.contains("CLUSTER_ENDPOINT"),
        "{message}"
    );
    let overrides = Overrides {
        endpoint: "https://private.example".into(),
        ca_bundle: String::new(),
    };
    let err = cluster::discover(&eks, &kube, "missing", &overrides, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CLUSTER_CA_BUNDLE"), "{err}");
    let trusted = cluster::pem_bundle(&[vec![1, 2, 3]]);
    let found = cluster::discover(&eks, &kube, "missing", &overrides, Some(trusted.clone()))
        .await
        .unwrap();
    assert_eq!(found.ca_bundle, trusted);
    assert_eq!(found.cidr, None);
}
