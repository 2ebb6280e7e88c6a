//! A Deployment's container started as the kubelet would start it, with the
//! real binary standing in for the image: the argv from the container's
//! `command`/`args` (or the image's `ENTRYPOINT`/`CMD` in
//! `controller/image/Containerfile`), its environment with field references
//! resolved, and in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`PORT`
//! and the service account's token, CA and namespace files mounted at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in a private mount
//! namespace (`unshare -m`, which needs root; the sandboxes this runs in are).
//!
//! What a kubelet does that this does not: resource limits, probes (the
//! tests read the endpoints themselves), restarts, and credentials an EKS
//! Pod Identity association would inject (the caller passes them as `extra`).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The service account's files, as the kubelet projects them.
pub struct ServiceAccountFiles {
    /// The bearer token.
    pub token: String,
    /// The API server's CA, PEM.
    pub ca_pem: Vec<u8>,
    /// The pod's namespace.
    pub namespace: String,
}

/// A started container process; killed (and reaped) when dropped.
pub struct ContainerProcess(pub Child);

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ENTRYPOINT` and `CMD` of the controller's Containerfile (JSON form).
pub fn image_entrypoint() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(crate::repo_path("controller/image/Containerfile"))
        .expect("controller/image/Containerfile");
    let field = |name: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|json| serde_json::from_str(json.trim()).expect("JSON-form instruction"))
            .unwrap_or_default()
    };
    (field("ENTRYPOINT "), field("CMD "))
}

/// The container's argv as a runtime builds it: `command` replaces the
/// image's entrypoint, `args` its command; `binary` stands in for argv[0].
pub fn container_argv(container: &Container, binary: &Path) -> Vec<String> {
    let (entrypoint, cmd) = image_entrypoint();
    let mut argv = container.command.clone().unwrap_or(entrypoint);
    let args = match (&container.command, &container.args) {
        (_, Some(args)) => args.clone(),
        (Some(_), None) => Vec::new(),
        (None, None) => cmd,
    };
    argv.extend(args);
    argv[0] = binary.display().to_string();
    argv
}

/// The first container of `deployment`.
pub fn first_container(deployment: &Deployment) -> &Container {
    &deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template")
        .containers[0]
}

/// The container's environment as the kubelet gives it: values, and the
/// pod's name and namespace for field references (others panic: the chart
/// uses none).
pub fn container_env(
    container: &Container,
    pod_name: &str,
    namespace: &str,
) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => {
                    match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                        Some("metadata.name") => pod_name.to_string(),
                        Some("metadata.namespace") => namespace.to_string(),
                        other => panic!("{}: unsupported field reference {other:?}", e.name),
                    }
                }
                (None, None) => String::new(),
            };
            (e.name.clone(), value)
        })
        .collect()
}

/// Starts `binary` as `deployment`'s first container in pod `pod_name`,
/// against the API server at `api`, with `account`'s files mounted and
/// `extra` added to the environment. `scratch` holds the files (and is the
/// process's HOME); its output (the logs) goes to `scratch/output.log` when
/// `log_to_file`, else its stderr to the test's and its stdout nowhere.
#[allow(clippy::too_many_arguments)]
pub fn start_in_cluster(
    binary: &Path,
    deployment: &Deployment,
    pod_name: &str,
    api: SocketAddr,
    account: &ServiceAccountFiles,
    scratch: &Path,
    extra: &[(String, String)],
    log_to_file: bool,
) -> ContainerProcess {
    let sa: PathBuf = scratch.join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), &account.token).unwrap();
    std::fs::write(sa.join("ca.crt"), &account.ca_pem).unwrap();
    std::fs::write(sa.join("namespace"), &account.namespace).unwrap();
    let container = first_container(deployment);
    let argv = container_argv(container, binary);
    let script = r#"mount -t tmpfs tmpfs /var/run && mkdir -p /var/run/secrets/kubernetes.io/serviceaccount && cp "$SA_DIR"/* /var/run/secrets/kubernetes.io/serviceaccount/ && exec "$@""#;
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c", script, "sh"])
        .args(&argv)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", scratch)
        .env("SA_DIR", &sa)
        .env("KUBERNETES_SERVICE_HOST", api.ip().to_string())
        .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
        .envs(container_env(container, pod_name, &account.namespace))
        .envs(extra.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if log_to_file {
        let log = std::fs::File::create(scratch.join("output.log")).unwrap();
        command
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
    }
    ContainerProcess(command.spawn().expect("unshare runs"))
}
