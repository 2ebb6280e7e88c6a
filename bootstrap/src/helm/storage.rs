//! Helm's release storage (the `secrets` driver of Helm 3 and 4): one
//! Secret per revision, `sh.helm.release.v1.<release>.v<revision>`, of type
//! `helm.sh/release.v1`, labelled `owner=helm`, `name`, `status`,
//! `version` and `modifiedAt`, whose `release` key holds
//! base64(gzip(JSON of the release)) (and the Secret encodes that again).

use super::chart::Chart;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// The Secret type Helm gives release records.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";

/// The label selector of every revision of release `name`.
pub fn selector(name: &str) -> String {
    format!("owner=helm,name={name}")
}

/// A release's state, as Helm names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Helm could not tell.
    Unknown,
    /// The current revision.
    Deployed,
    /// Removed, history kept.
    Uninstalled,
    /// An older revision.
    Superseded,
    /// Its install or upgrade failed.
    Failed,
    /// Being removed.
    Uninstalling,
    /// Being installed (a run stopped here left it so).
    PendingInstall,
    /// Being upgraded.
    PendingUpgrade,
    /// Being rolled back.
    PendingRollback,
}

impl Status {
    /// The label value (`deployed`, `pending-install`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }

    /// An operation on the release started and never finished.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }
}

/// `info` of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// When revision 1 was deployed (RFC 3339).
    #[serde(default)]
    pub first_deployed: String,
    /// When this revision was deployed.
    #[serde(default)]
    pub last_deployed: String,
    /// When it was uninstalled, if it was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deleted: String,
    /// What happened (`Install complete`, `Upgrade complete`).
    #[serde(default)]
    pub description: String,
    /// Its state.
    pub status: Status,
    /// Rendered NOTES.txt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// One revision of a release, in Helm's JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The release's name.
    pub name: String,
    /// Its state and history.
    pub info: Info,
    /// The chart it was made from (metadata, templates, values, files).
    pub chart: Value,
    /// The values the user gave (not merged with the chart's).
    #[serde(default)]
    pub config: Value,
    /// The rendered objects.
    #[serde(default)]
    pub manifest: String,
    /// Hooks (the chart has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Value>,
    /// The revision number.
    pub version: u32,
    /// The namespace it is installed in.
    pub namespace: String,
    /// `ssa` (server-side apply) or `csa`; Helm 4 keeps using the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_method: Option<String>,
}

/// Why a Secret is not a readable release.
#[derive(Debug, thiserror::Error)]
#[error("Helm release Secret {secret}: {reason}")]
pub struct DecodeError {
    /// The Secret's name.
    pub secret: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The chart as a release records it.
pub fn chart_record(chart: &Chart) -> Value {
    let encode = |files: &[super::chart::ChartFile]| -> Vec<Value> {
        files
            .iter()
            .map(|f| json!({"name": f.path, "data": STANDARD.encode(f.text)}))
            .collect()
    };
    json!({
        "metadata": chart.metadata,
        "lock": null,
        "templates": encode(&chart.templates),
        "values": chart.values,
        "schema": null,
        "files": encode(&chart.files),
    })
}

/// The Secret's name for `release`'s revision.
pub fn secret_name(release: &str, version: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// `release` as the Secret Helm would write for it; `modified_at` is the
/// Unix time of the write.
pub fn to_secret(release: &Release, modified_at: i64) -> Secret {
    let json = serde_json::to_vec(release).expect("a release serializes");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&json).expect("writing to memory");
    let compressed = gz.finish().expect("writing to memory");
    let labels = BTreeMap::from([
        ("name".to_string(), release.name.clone()),
        ("owner".to_string(), "helm".to_string()),
        (
            "status".to_string(),
            release.info.status.as_str().to_string(),
        ),
        ("version".to_string(), release.version.to_string()),
        ("modifiedAt".to_string(), modified_at.to_string()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&release.name, release.version)),
            namespace: Some(release.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(
            "release".to_string(),
            ByteString(STANDARD.encode(compressed).into_bytes()),
        )])),
        ..Default::default()
    }
}

/// The release a Helm Secret holds.
pub fn from_secret(secret: &Secret) -> Result<Release, DecodeError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let err = |reason: String| DecodeError {
        secret: name.clone(),
        reason,
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| err("has no `release` key".into()))?;
    let compressed = STANDARD
        .decode(&data.0)
        .map_err(|e| err(format!("`release` is not base64: {e}")))?;
    let mut json = Vec::new();
    if compressed.starts_with(&[0x1f, 0x8b]) {
        GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| err(format!("`release` is not gzip: {e}")))?;
    } else {
        json = compressed;
    }
    serde_json::from_slice(&json).map_err(|e| err(format!("`release` is not a release: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_survives_the_secret_encoding() {
        let release = Release {
            name: "karpenter".into(),
            info: Info {
                first_deployed: "2026-11-24T00:00:00Z".into(),
                last_deployed: "2026-11-24T00:00:00Z".into(),
                deleted: String::new(),
                description: "Install complete".into(),
                status: Status::Deployed,
                notes: String::new(),
            },
            chart: chart_record(&Chart::embedded()),
            config: json!({"settings": {"clusterName": "demo"}}),
            manifest: "---\n# Source: karpenter/templates/service.yaml\nkind: Service\n".into(),
            hooks: Vec::new(),
            version: 3,
            namespace: "kube-system".into(),
            apply_method: Some("ssa".into()),
        };
        let secret = to_secret(&release, 1_795_000_000);
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("sh.helm.release.v1.karpenter.v3")
        );
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["status"], "deployed");
        assert_eq!(labels["version"], "3");
        assert_eq!(labels["owner"], "helm");
        assert_eq!(secret.type_.as_deref(), Some(SECRET_TYPE));
        assert_eq!(from_secret(&secret).unwrap(), release);
        let raw = STANDARD
            .decode(&secret.data.as_ref().unwrap()["release"].0)
            .unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b], "gzip inside");
    }

    #[test]
    fn a_broken_record_says_what_is_wrong() {
        let mut secret = Secret::default();
        secret.metadata.name = Some("sh.helm.release.v1.x.v1".into());
        let err = from_secret(&secret).unwrap_err();
        assert!(err.to_string().contains("no `release` key"), "{err}");
    }
}
