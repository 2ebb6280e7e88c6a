//! The production binary: it says what it is (name, workspace version,
//! revision), and it carries no simulation: kubesim and the simulated EC2
//! are `karpenter-sim`'s.

#[test]
fn version_names_the_crate_version_and_revision() {
    test_support::version::assert_version(
        env!("CARGO_BIN_EXE_karpenter-controller"),
        "karpenter-controller",
    );
}

#[test]
fn the_production_binary_refuses_the_simulated_cloud() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karpenter-controller"))
        .arg("run")
        .env("CLUSTER_NAME", "version-test")
        .env("CLOUD_PROVIDER", "simulated")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CLOUD_PROVIDER=simulated") && stderr.contains("karpenter-sim run"),
        "{stderr}"
    );
}

#[test]
fn the_production_controller_links_no_simulation() {
    let linked = test_support::deps::normal_dependencies("karpenter-controller", &[]);
    for simulation in ["kubesim", "karpenter-sim"] {
        assert!(
            !linked.iter().any(|name| name == simulation),
            "karpenter-controller links {simulation}"
        );
    }
}
