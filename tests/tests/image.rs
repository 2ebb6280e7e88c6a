//! The controller image as `scripts/build-image` builds it (podman, vfs
//! storage). This sandbox refuses to run containers, so the test does what a
//! runtime would: reads the OCI layout (index, manifest, config), unpacks
//! the layers into an empty root, and runs the configured entrypoint there
//! with `--version`, as the configured user, through `chroot`. A binary that
//! needed a library or a loader would not start in that root.
//!
//! The image is built from the dev profile to keep the suite fast; users
//! build the release profile (the script's default), whose size the README
//! quotes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::version::expected_version_line;
use test_support::{DevEnv, Part, repo_path};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("a digest");
    layout.join("blobs").join(algorithm).join(hex)
}

/// `key: value` of the first line in `text` whose key is `key` (after
/// trimming): enough for the chart's flat fields.
fn yaml_field(text: &str, key: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn the_image_holds_only_the_static_controller_and_runs_as_non_root() {
    let env = DevEnv::load();
    if env.require(Part::Podman, "controller image").is_none() {
        return;
    }
    let scratch = std::env::temp_dir().join(format!("karpenter-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let layout = scratch.join("oci");
    let built = Command::new(repo_path("scripts/build-image"))
        .args(["--profile", "dev", "--out"])
        .arg(&layout)
        .envs(env.path(Part::Podman).map(|p| ("KARPENTER_PODMAN", p)))
        .output()
        .expect("scripts/build-image runs");
    let printed = String::from_utf8_lossy(&built.stdout).to_string();
    assert!(
        built.status.success(),
        "scripts/build-image failed:\n{printed}{}",
        String::from_utf8_lossy(&built.stderr)
    );
    karpenter_e2e::say(printed.trim_end());

    // The tag is the chart's default image.
    let values = std::fs::read_to_string(repo_path("charts/karpenter/values.yaml")).unwrap();
    let chart = std::fs::read_to_string(repo_path("charts/karpenter/Chart.yaml")).unwrap();
    let default_image = format!(
        "{}:{}",
        yaml_field(&values, "repository"),
        yaml_field(&chart, "appVersion")
    );
    let index = read_json(&layout.join("index.json"));
    let descriptor = &index["manifests"][0];
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        default_image.as_str()
    );
    assert_eq!(printed.lines().next(), Some(default_image.as_str()));

    // The configuration: entrypoint, command and user.
    let manifest = read_json(&blob(&layout, descriptor["digest"].as_str().unwrap()));
    let config = read_json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let run = &config["config"];
    assert_eq!(
        run["Entrypoint"],
        serde_json::json!(["/karpenter-controller"])
    );
    assert_eq!(run["Cmd"], serde_json::json!(["run"]));
    assert_eq!(run["User"], "65532:65532");

    // The layers, unpacked: exactly the binary, the CA bundle and the user.
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let tarball = blob(&layout, layer["digest"].as_str().unwrap());
        let listed = Command::new("tar")
            .arg("-tzf")
            .arg(&tarball)
            .output()
            .unwrap();
        files.extend(
            String::from_utf8_lossy(&listed.stdout)
                .lines()
                .filter(|l| !l.ends_with('/'))
                .map(str::to_string),
        );
        let unpacked = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap();
        assert!(unpacked.success());
    }
    files.sort();
    assert_eq!(
        files,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "karpenter-controller"
        ],
        "no shell, no libraries, nothing else"
    );
    let headers = Command::new("readelf")
        .arg("-l")
        .arg(root.join("karpenter-controller"))
        .output()
        .expect("readelf runs");
    assert!(
        !String::from_utf8_lossy(&headers.stdout).contains("program interpreter"),
        "the binary needs a dynamic loader"
    );

    // The entrypoint runs in that root as the image's user.
    let entrypoint = run["Entrypoint"][0].as_str().unwrap();
    let version = Command::new("chroot")
        .arg(format!("--userspec={}", run["User"].as_str().unwrap()))
        .arg(&root)
        .arg(entrypoint)
        .arg("--version")
        .output()
        .expect("chroot runs");
    assert!(
        version.status.success(),
        "the entrypoint does not start: {}",
        String::from_utf8_lossy(&version.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        expected_version_line("karpenter-controller")
    );
    let binary = std::fs::metadata(root.join("karpenter-controller"))
        .unwrap()
        .len();
    karpenter_e2e::say(&format!(
        "controller image (dev profile): binary {:.1} MiB; {}",
        binary as f64 / 1048576.0,
        printed.lines().nth(1).unwrap_or_default().trim()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
}
