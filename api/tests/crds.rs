//! The committed CRDs match the types, and are structural with the upstream names.

use karpenter_api::crd;

#[test]
fn committed_crds_are_fresh() {
    let dir = test_support::repo_path("charts/karpenter/crds");
    for (file, generated) in crd::all() {
        let path = dir.join(file);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == crd::to_yaml(&generated),
            "{file} is stale: run `cargo run -p karpenter-api --bin karpenter-crdgen` and commit the result"
        );
    }
}

#[test]
fn crds_are_structural_cluster_scoped_with_status() {
    // name, kind, version, scope, category: upstream's.
    let expected = [
        (
            "nodepools.karpenter.sh",
            "NodePool",
            "v1",
            "Cluster",
            "karpenter",
        ),
        (
            "nodeclaims.karpenter.sh",
            "NodeClaim",
            "v1",
            "Cluster",
            "karpenter",
        ),
        (
            "ec2nodeclasses.karpenter.k8s.aws",
            "EC2NodeClass",
            "v1",
            "Cluster",
            "karpenter",
        ),
        (
            "nodeoverlays.karpenter.sh",
            "NodeOverlay",
            "v1alpha1",
            "Cluster",
            "karpenter",
        ),
        (
            "capacitybuffers.autoscaling.x-k8s.io",
            "CapacityBuffer",
            "v1beta1",
            "Namespaced",
            "autoscaling",
        ),
    ];
    let all = crd::all();
    assert_eq!(all.len(), expected.len());
    for ((_, crd), (name, kind, version_name, scope, category)) in all.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.scope, scope);
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&[category.to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert!(version.served && version.storage && version.name == version_name);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind}: status subresource"
        );
        let schema = version
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        assert_eq!(
            crd::structural_problems(schema),
            Vec::<String>::new(),
            "{kind}: schema must be structural"
        );
    }
    let ec2 = &all[2].1;
    assert_eq!(
        ec2.spec.names.short_names.as_deref(),
        Some(&["ec2nc".to_string(), "ec2ncs".to_string()][..])
    );
}

#[test]
fn structural_check_catches_untyped_nodes() {
    let schema: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps =
        serde_json::from_value(serde_json::json!({
            "type": "object",
            "properties": {"a": {"description": "no type"}, "b": {"$ref": "#/x", "type": "string"}}
        }))
        .unwrap();
    let problems = crd::structural_problems(&schema);
    assert_eq!(
        problems,
        vec![
            "openAPIV3Schema.a: type is required",
            "openAPIV3Schema.b: $ref is not allowed"
        ]
    );
}

#[test]
fn schema_defaulting_descends_into_inserted_defaults() {
    // As the API server does: `disruption` defaults to {consolidateAfter: 0s}, and
    // the walk continues into it, filling consolidationPolicy and budgets.
    let (_, pool_crd) = crd::all().into_iter().next().unwrap();
    let schema = pool_crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    let mut pool = serde_json::json!({"spec": {"template": {"spec": {"requirements": []}}}});
    crd::apply_schema_defaults(&schema, &mut pool);
    assert_eq!(
        pool["spec"]["disruption"],
        serde_json::json!({
            "consolidateAfter": "0s",
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "budgets": [{"nodes": "10%"}]
        })
    );
    assert_eq!(pool["spec"]["template"]["spec"]["expireAfter"], "720h");
    // A budget the user wrote gets its nodes default; present values are kept.
    let mut pool = serde_json::json!({"spec": {"disruption": {"consolidateAfter": "5m", "budgets": [{"reasons": ["Empty"]}]}}});
    crd::apply_schema_defaults(&schema, &mut pool);
    assert_eq!(
        pool["spec"]["disruption"]["budgets"],
        serde_json::json!([{"reasons": ["Empty"], "nodes": "10%"}])
    );
    assert_eq!(pool["spec"]["disruption"]["consolidateAfter"], "5m");
}
