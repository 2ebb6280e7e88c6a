//! AMI families and aliases: which public SSM parameters name the EKS-optimised
//! images of `al2023@latest`, `bottlerocket@v1.20.0`, `al2@v20240807`, and
//! which instance types each image can boot.

use crate::cloud::CloudError;
use k8s_openapi::api::core::v1::NodeSelectorRequirement;
use karpenter_api::labels;

pub use crate::userdata::AmiFamily;

/// What an image is built for: CPU architecture and accelerator variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// No accelerator drivers: for instance types without GPUs or Neuron devices.
    Standard,
    /// NVIDIA drivers: for instance types with NVIDIA GPUs.
    Nvidia,
    /// Neuron drivers: for Inferentia and Trainium instance types.
    Neuron,
}

/// One SSM parameter an alias expands to, and the instance types its image serves.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasParameter {
    /// Full parameter name, under the configured prefix.
    pub name: String,
    /// `amd64` or `arm64`.
    pub architecture: &'static str,
    /// Accelerator variant.
    pub variant: Variant,
}

/// Expands `family@version` into the SSM parameters of its images, one per
/// architecture and variant the family publishes. `prefix` is `/aws/service`
/// on AWS (tests seed their own prefix: moto refuses writes under `/aws`).
pub fn alias_parameters(
    alias: &str,
    kubernetes_version: &str,
    prefix: &str,
) -> Result<Vec<AliasParameter>, CloudError> {
    let invalid = |rule: &str| {
        CloudError::Invalid(format!("spec.amiSelectorTerms[].alias {alias:?}: {rule}"))
    };
    let (family, version) = alias
        .split_once('@')
        .ok_or_else(|| invalid("must be family@version (al2023@latest)"))?;
    if version.is_empty() || version.contains('/') {
        return Err(invalid(
            "the version must be `latest` or a release like v20240807",
        ));
    }
    let family = AmiFamily::parse(family)
        .filter(|f| *f != AmiFamily::Custom)
        .ok_or_else(|| invalid("the family must be al2023, al2 or bottlerocket (Windows is not supported: the catalog is Linux-only)"))?;
    let latest = version == "latest";
    let k8s = kubernetes_version;
    let mut out = Vec::new();
    for (architecture, aws_arch) in [("amd64", "x86_64"), ("arm64", "arm64")] {
        let variants: &[Variant] = match (family, architecture) {
            (AmiFamily::Al2, "arm64") => &[Variant::Standard],
            (AmiFamily::Bottlerocket, _) => &[Variant::Standard, Variant::Nvidia],
            _ => &[Variant::Standard, Variant::Nvidia, Variant::Neuron],
        };
        for &variant in variants {
            let path = match family {
                AmiFamily::Al2023 => {
                    let v = match variant {
                        Variant::Standard => "standard",
                        Variant::Nvidia => "nvidia",
                        Variant::Neuron => "neuron",
                    };
                    let release = if latest {
                        "recommended".to_string()
                    } else {
                        format!("amazon-eks-node-al2023-{aws_arch}-{v}-{k8s}-{version}")
                    };
                    format!(
                        "eks/optimized-ami/{k8s}/amazon-linux-2023/{aws_arch}/{v}/{release}/image_id"
                    )
                }
                AmiFamily::Al2 => {
                    let suffix = match (architecture, variant) {
                        ("arm64", _) => "-arm64",
                        (_, Variant::Standard) => "",
                        _ => "-gpu",
                    };
                    let release = if latest {
                        "recommended".to_string()
                    } else {
                        format!("amazon-eks{suffix}-node-{k8s}-{version}")
                    };
                    format!("eks/optimized-ami/{k8s}/amazon-linux-2{suffix}/{release}/image_id")
                }
                AmiFamily::Bottlerocket => {
                    let nvidia = if variant == Variant::Nvidia {
                        "-nvidia"
                    } else {
                        ""
                    };
                    let release = version.trim_start_matches('v');
                    format!("bottlerocket/aws-k8s-{k8s}{nvidia}/{aws_arch}/{release}/image_id")
                }
                AmiFamily::Custom => unreachable!("rejected above"),
            };
            // AL2's GPU image serves both NVIDIA and Neuron types.
            if family == AmiFamily::Al2 && variant == Variant::Neuron {
                continue;
            }
            out.push(AliasParameter {
                name: format!("{}/{path}", prefix.trim_end_matches('/')),
                architecture,
                variant,
            });
        }
    }
    Ok(out)
}

/// The requirements an image places on instance types (the `status.amis[].requirements`).
pub fn image_requirements(
    architecture: &str,
    variant: Option<Variant>,
) -> Vec<NodeSelectorRequirement> {
    let req = |key: &str, operator: &str, values: &[&str]| NodeSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    };
    let mut out = vec![req(labels::ARCH, "In", &[architecture])];
    match variant {
        None => {}
        Some(Variant::Standard) => {
            out.push(req(
                "karpenter.k8s.aws/instance-gpu-count",
                "DoesNotExist",
                &[],
            ));
            out.push(req(
                "karpenter.k8s.aws/instance-accelerator-count",
                "DoesNotExist",
                &[],
            ));
        }
        Some(Variant::Nvidia) => {
            out.push(req(
                "karpenter.k8s.aws/instance-gpu-manufacturer",
                "In",
                &["nvidia"],
            ));
        }
        Some(Variant::Neuron) => {
            out.push(req(
                "karpenter.k8s.aws/instance-accelerator-manufacturer",
                "In",
                &["aws"],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn al2023_latest_expands_per_architecture_and_variant() {
        let params = alias_parameters("al2023@latest", "1.33", "/aws/service").unwrap();
        assert_eq!(params.len(), 6);
        assert_eq!(
            params[0].name,
            "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"
        );
        let pinned = alias_parameters("al2023@v20240807", "1.30", "/test/").unwrap();
        assert_eq!(
            pinned[4].name,
            "/test/eks/optimized-ami/1.30/amazon-linux-2023/arm64/nvidia/amazon-eks-node-al2023-arm64-nvidia-1.30-v20240807/image_id"
        );
    }

    #[test]
    fn bottlerocket_and_al2_paths() {
        let br = alias_parameters("bottlerocket@v1.20.3", "1.31", "/aws/service").unwrap();
        assert_eq!(
            br[1].name,
            "/aws/service/bottlerocket/aws-k8s-1.31-nvidia/x86_64/1.20.3/image_id"
        );
        let al2 = alias_parameters("al2@latest", "1.29", "/aws/service").unwrap();
        let names: Vec<&str> = al2.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "/aws/service/eks/optimized-ami/1.29/amazon-linux-2/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.29/amazon-linux-2-gpu/recommended/image_id",
                "/aws/service/eks/optimized-ami/1.29/amazon-linux-2-arm64/recommended/image_id",
            ]
        );
    }

    #[test]
    fn bad_aliases_name_the_field_and_rule() {
        for (alias, rule) in [
            ("al2023", "family@version"),
            ("windows2022@latest", "Windows is not supported"),
            ("al2023@", "version must be"),
        ] {
            let err = alias_parameters(alias, "1.33", "/aws/service")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("spec.amiSelectorTerms[].alias") && err.contains(rule),
                "{err}"
            );
        }
    }

    #[test]
    fn family_of_a_class() {
        let class: karpenter_api::v1::EC2NodeClass = serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "x"},
            "spec": {"amiSelectorTerms": [{"alias": "bottlerocket@latest"}], "role": "r",
                     "subnetSelectorTerms": [], "securityGroupSelectorTerms": []}
        }))
        .unwrap();
        assert_eq!(AmiFamily::of(&class), AmiFamily::Bottlerocket);
    }
}
