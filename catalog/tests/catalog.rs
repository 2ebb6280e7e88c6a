//! The embedded catalog is current with its sources, and carries the labels
//! Karpenter users select on.

use karpenter_catalog::{CapacityType, Catalog, generate};
use test_support::{DevEnv, Part};

#[test]
fn embedded_catalog_is_fresh() {
    if DevEnv::load()
        .require(Part::Python, "embedded_catalog_is_fresh")
        .is_none()
    {
        return;
    }
    let crate_dir = &test_support::repo_path("catalog");
    let moto =
        generate::dev_env_moto_resources(crate_dir).expect("moto's EC2 resources in .dev-env");
    let types = generate::from_moto(
        &moto,
        "us-east-1",
        &crate_dir.join("data/ec2-on-demand-prices-us-east-1.csv"),
    )
    .unwrap();
    let committed = std::fs::read_to_string(crate_dir.join("data/us-east-1.json")).unwrap();
    assert!(
        committed == generate::to_json(&types),
        "catalog/data/us-east-1.json is stale: run `cargo run -p karpenter-catalog --bin karpenter-catalog-gen` and commit it"
    );
    assert!(types.len() > 1300, "{} types", types.len());
}

#[test]
fn well_known_labels_of_real_types() {
    let catalog = Catalog::us_east_1();
    let labels = |name: &str| {
        catalog
            .get(name)
            .unwrap_or_else(|| panic!("{name} in catalog"))
            .labels()
    };

    let p4d = labels("p4d.24xlarge");
    assert_eq!(p4d["karpenter.k8s.aws/instance-gpu-name"], "a100");
    assert_eq!(p4d["karpenter.k8s.aws/instance-gpu-manufacturer"], "nvidia");
    assert_eq!(p4d["karpenter.k8s.aws/instance-gpu-count"], "8");
    assert_eq!(p4d["karpenter.k8s.aws/instance-gpu-memory"], "40960");
    assert_eq!(p4d["karpenter.k8s.aws/instance-category"], "p");

    let inf2 = labels("inf2.xlarge");
    assert_eq!(
        inf2["karpenter.k8s.aws/instance-accelerator-name"],
        "inferentia2"
    );
    assert_eq!(
        inf2["karpenter.k8s.aws/instance-accelerator-manufacturer"],
        "aws"
    );

    let graviton = labels("m7g.large");
    assert_eq!(graviton["kubernetes.io/arch"], "arm64");
    assert_eq!(
        graviton["karpenter.k8s.aws/instance-cpu-manufacturer"],
        "aws"
    );

    let m5d = labels("m5d.large");
    assert_eq!(m5d["karpenter.k8s.aws/instance-local-nvme"], "75");
    assert_eq!(m5d["karpenter.k8s.aws/instance-generation"], "5");
    assert_eq!(m5d["karpenter.k8s.aws/instance-size"], "large");
    assert_eq!(m5d["karpenter.k8s.aws/instance-memory"], "8192");
    assert_eq!(m5d["karpenter.k8s.aws/instance-hypervisor"], "nitro");

    assert_eq!(
        labels("c7i-flex.large")["karpenter.k8s.aws/instance-capability-flex"],
        "true"
    );
    assert!(!labels("m5.large").contains_key("karpenter.k8s.aws/instance-gpu-count"));

    // Every label is one Karpenter knows, with a valid label value.
    for t in catalog.iter() {
        for (key, value) in t.labels() {
            assert!(
                karpenter_api::labels::is_well_known(&key),
                "{}: {key} is not well known",
                t.name
            );
            assert!(
                karpenter_api::labels::check_value(&value).is_ok(),
                "{}: {key}={value}",
                t.name
            );
        }
    }
}

#[test]
fn offerings_cover_zones_and_capacity_types() {
    let catalog = Catalog::us_east_1();
    let m5 = catalog.get("m5.large").unwrap();
    assert!(m5.zones.len() >= 5, "{:?}", m5.zones);
    assert_eq!(m5.offerings.len(), m5.zones.len() * 2);
    let od = m5
        .cheapest(&["us-east-1a"], &[CapacityType::OnDemand])
        .unwrap();
    assert_eq!(od.price, m5.on_demand_price);
    let spot = m5.cheapest(&[], &[CapacityType::Spot]).unwrap();
    assert!(spot.price < od.price && spot.price >= od.price * 0.25);
    assert!(
        m5.cheapest(&["us-east-1z"], &[CapacityType::OnDemand])
            .is_none()
    );
    // Every type has at least one priced on-demand offering.
    assert!(catalog.iter().all(|t| {
        t.on_demand_price > 0.0
            && t.offerings
                .iter()
                .any(|o| o.capacity_type == CapacityType::OnDemand)
    }));
}
