//! The simulated boot against the planning arithmetic: for random
//! EC2NodeClasses and instance types, the allocatable the scheduler plans
//! with is the allocatable the booted node reports; and a node whose user
//! data names another cluster, endpoint or CA, or drops a taint or a kubelet
//! setting, is caught.

use base64::Engine;
use k8s_openapi::api::core::v1::{Node, Taint};
use karpenter_api::quantity::Quantity;
use karpenter_api::v1::{EC2NodeClass, KubeletConfiguration, NodeClaim};
use karpenter_controller::catalog::{Catalog, InstanceType, KubeletSettings};
use karpenter_controller::userdata::{AmiFamily, ClusterInfo, NodeBootstrap, render};
use karpenter_sim::boot::{self, BootError, ClusterIdentity, Machine};
use serde_json::json;
use std::collections::BTreeMap;

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlrdWJlc2lt\n-----END CERTIFICATE-----\n";

fn identity() -> ClusterIdentity {
    ClusterIdentity {
        name: "prod".into(),
        endpoint: "https://ABCDEF.gr7.us-east-1.eks.amazonaws.com".into(),
        ca_pem: CA_PEM.into(),
    }
}

fn cluster_info() -> ClusterInfo {
    let id = identity();
    ClusterInfo {
        name: id.name,
        endpoint: id.endpoint,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(CA_PEM),
        cidr: Some("172.20.0.0/16".into()),
        dns_ip: Some("172.20.0.10".into()),
    }
}

/// xorshift64*, seeded: the same classes every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self) -> bool {
        self.below(2) == 0
    }
}

fn class(rng: &mut Rng) -> EC2NodeClass {
    let alias = ["al2023@latest", "bottlerocket@latest", "al2@latest"][rng.below(3) as usize];
    let family = AmiFamily::parse(alias.split('@').next().unwrap()).unwrap();
    let device = family.ephemeral_device().unwrap();
    let mut kubelet = KubeletConfiguration::default();
    if rng.chance() {
        kubelet.max_pods = Some([8, 29, 58, 110, 250][rng.below(5) as usize]);
    }
    if rng.below(3) == 0 {
        kubelet.pods_per_core = Some([2, 4, 10][rng.below(3) as usize]);
    }
    if rng.below(3) == 0 {
        let mut reserved = BTreeMap::new();
        if rng.chance() {
            reserved.insert("cpu".to_string(), format!("{}m", 50 + rng.below(400)));
        }
        reserved.insert("memory".to_string(), format!("{}Mi", 200 + rng.below(2000)));
        kubelet.kube_reserved = Some(reserved);
    }
    if rng.below(3) == 0 {
        kubelet.system_reserved = Some(BTreeMap::from([
            ("cpu".to_string(), format!("{}m", 100 + rng.below(200))),
            ("memory".to_string(), format!("{}Mi", 100 + rng.below(500))),
        ]));
    }
    if rng.below(3) == 0 {
        let mut hard = BTreeMap::from([(
            "memory.available".to_string(),
            ["200Mi", "5%", "750Mi"][rng.below(3) as usize].to_string(),
        )]);
        if rng.chance() {
            hard.insert("nodefs.available".to_string(), "15%".to_string());
        }
        kubelet.eviction_hard = Some(hard);
    }
    if rng.below(4) == 0 {
        kubelet.eviction_soft = Some(BTreeMap::from([(
            "memory.available".to_string(),
            "1Gi".to_string(),
        )]));
        kubelet.eviction_soft_grace_period = Some(BTreeMap::from([(
            "memory.available".to_string(),
            "90s".to_string(),
        )]));
    }
    let mut spec = json!({
        "role": "KarpenterNodeRole-prod",
        "amiSelectorTerms": [{"alias": alias}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}],
        "kubelet": kubelet,
    });
    if rng.chance() {
        let size = [30, 80, 200][rng.below(3) as usize];
        let mut mappings = vec![json!({"deviceName": device, "rootVolume": true,
            "ebs": {"volumeSize": format!("{size}Gi"), "volumeType": "gp3", "encrypted": true}})];
        if family == AmiFamily::Bottlerocket {
            mappings.insert(
                0,
                json!({"deviceName": "/dev/xvda",
                "ebs": {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": true}}),
            );
        }
        spec["blockDeviceMappings"] = json!(mappings);
    }
    if rng.below(4) == 0 {
        spec["instanceStorePolicy"] = json!("RAID0");
    }
    serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default"}, "spec": spec,
    }))
    .unwrap()
}

fn claim(taints: bool) -> NodeClaim {
    let mut claim: NodeClaim = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": "default-x1", "labels": {"karpenter.sh/nodepool": "default", "team": "a"}},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": []},
    }))
    .unwrap();
    if taints {
        claim.spec.template.taints = Some(vec![Taint {
            key: "dedicated".into(),
            value: Some("batch".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]);
    }
    claim
}

fn machine(t: &InstanceType, class: &EC2NodeClass) -> Machine {
    Machine {
        instance_id: "i-0123456789abcdef0".into(),
        zone: "us-east-1a".into(),
        region: "us-east-1".into(),
        instance_type: t.clone(),
        volumes: boot::launch_volumes(class),
        efa_interfaces: 0,
    }
}

fn user_data(class: &EC2NodeClass, claim: &NodeClaim, t: &InstanceType) -> String {
    let planned = KubeletSettings::for_class(class);
    let node = NodeBootstrap::for_claim(claim, class, "on-demand", t.max_pods(&planned));
    render(AmiFamily::of(class), &cluster_info(), &node, None).unwrap()
}

fn booted(class: &EC2NodeClass, t: &InstanceType, user_data: &str) -> Result<Node, BootError> {
    boot::boot(
        AmiFamily::of(class),
        user_data,
        &identity(),
        &machine(t, class),
    )
}

#[test]
fn planned_allocatable_is_what_the_booted_node_reports() {
    let catalog = Catalog::us_east_1();
    let types: Vec<&InstanceType> = catalog.iter().collect();
    let mut rng = Rng(0x5eed);
    for case in 0..400 {
        let class = class(&mut rng);
        let t = types[rng.below(types.len() as u64) as usize];
        // The claim asks for no EFA, so none is attached or planned.
        let (_, planned) =
            karpenter_controller::cloud::node_resources(t, &KubeletSettings::for_class(&class), 0);
        let node = booted(&class, t, &user_data(&class, &claim(false), t))
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let reported = node.status.unwrap().allocatable.unwrap();
        for (resource, want) in &planned {
            let got: Quantity = reported
                .get(resource)
                .unwrap_or_else(|| panic!("case {case}: node reports no {resource}"))
                .0
                .parse()
                .unwrap();
            assert_eq!(
                got.nanos(),
                want.nanos(),
                "case {case}: {resource} on {} with {}: planned {want}, node reports {got}\nclass: {}",
                t.name,
                class.spec.ami_selector_terms[0].alias.as_deref().unwrap(),
                serde_json::to_string(&class.spec).unwrap()
            );
        }
    }
}

#[test]
fn labels_and_taints_come_from_the_user_data() {
    let catalog = Catalog::us_east_1();
    let t = catalog.get("m5.large").unwrap();
    for alias in ["al2023@latest", "bottlerocket@latest", "al2@latest"] {
        let mut rng = Rng(1);
        let mut class = class(&mut rng);
        class.spec.ami_selector_terms[0].alias = Some(alias.into());
        let node = booted(&class, t, &user_data(&class, &claim(true), t)).unwrap();
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["team"], "a", "{alias}");
        assert_eq!(labels["karpenter.sh/nodepool"], "default", "{alias}");
        assert_eq!(labels["karpenter.sh/capacity-type"], "on-demand", "{alias}");
        assert_eq!(
            labels["node.kubernetes.io/instance-type"], "m5.large",
            "{alias}"
        );
        let mut taints: Vec<String> = node
            .spec
            .unwrap()
            .taints
            .unwrap_or_default()
            .iter()
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.clone().unwrap_or_default(),
                    t.effect
                )
            })
            .collect();
        taints.sort();
        assert_eq!(
            taints,
            [
                "dedicated=batch:NoSchedule",
                "karpenter.sh/unregistered=:NoExecute"
            ],
            "{alias}"
        );
    }
}

#[test]
fn every_cluster_dns_address_reaches_every_family() {
    let t = Catalog::us_east_1().get("m5.large").unwrap().clone();
    let mut rng = Rng(11);
    let dns = vec!["172.20.0.10".to_string(), "169.254.20.10".to_string()];
    for alias in ["al2023@latest", "bottlerocket@latest", "al2@latest"] {
        let mut class = class(&mut rng);
        class.spec.ami_selector_terms[0].alias = Some(alias.into());
        let mut kubelet = class.spec.kubelet.clone().unwrap_or_default();
        kubelet.cluster_dns = Some(dns.clone());
        class.spec.kubelet = Some(kubelet);
        let text = user_data(&class, &claim(false), &t);
        let read = boot::read(AmiFamily::of(&class), &text).unwrap();
        assert_eq!(read.cluster_dns, dns, "{alias}\n{text}");
    }
}

#[test]
fn a_node_pointed_at_the_wrong_cluster_does_not_join() {
    let t = Catalog::us_east_1().get("m5.large").unwrap().clone();
    let mut rng = Rng(7);
    for alias in ["al2023@latest", "bottlerocket@latest", "al2@latest"] {
        let mut class = class(&mut rng);
        class.spec.ami_selector_terms[0].alias = Some(alias.into());
        let node = NodeBootstrap::for_claim(&claim(false), &class, "spot", 29);
        let family = AmiFamily::of(&class);
        let wrong = |change: &dyn Fn(&mut ClusterInfo)| {
            let mut info = cluster_info();
            change(&mut info);
            let text = render(family, &info, &node, None).unwrap();
            booted(&class, &t, &text).unwrap_err()
        };
        let err = wrong(&|c| c.endpoint = "https://10.100.0.1:443".into());
        assert!(err.to_string().contains("API server"), "{alias}: {err}");
        let err =
            wrong(&|c| c.ca_bundle = base64::engine::general_purpose::STANDARD.encode("other CA"));
        assert!(err.to_string().contains("CA"), "{alias}: {err}");
        let err = wrong(&|c| c.name = "staging".into());
        assert!(err.to_string().contains("cluster name"), "{alias}: {err}");
        let err = wrong(&|c| c.ca_bundle = String::new());
        assert!(
            matches!(err, BootError::Agent { .. } | BootError::WrongCluster(_)),
            "{alias}: {err}"
        );
    }
}

#[test]
fn a_dropped_taint_or_kubelet_setting_shows() {
    let catalog = Catalog::us_east_1();
    let t = catalog.get("m5.xlarge").unwrap();
    let mut rng = Rng(3);
    let mut class = class(&mut rng);
    class.spec.ami_selector_terms[0].alias = Some("al2023@latest".into());
    class.spec.kubelet = Some(KubeletConfiguration {
        system_reserved: Some(BTreeMap::from([("memory".to_string(), "1Gi".to_string())])),
        ..Default::default()
    });
    let text = user_data(&class, &claim(true), t);
    // The same user data with the taint and the reservation removed by hand.
    let tampered = text
        .replace(
            "      - effect: NoSchedule\n        key: dedicated\n        value: batch\n",
            "",
        )
        .replace("      systemReserved:\n        memory: 1Gi\n", "");
    assert_ne!(tampered, text, "the test edits what it means to");
    let planned = t.allocatable(&KubeletSettings::for_class(&class));
    let node = booted(&class, t, &tampered).unwrap();
    let reported: Quantity = node.status.unwrap().allocatable.unwrap()["memory"]
        .0
        .parse()
        .unwrap();
    assert_ne!(
        reported, planned["memory"],
        "a dropped systemReserved changes the node"
    );
    let taints = node.spec.unwrap().taints.unwrap_or_default();
    assert!(!taints.iter().any(|t| t.key == "dedicated"));
}
