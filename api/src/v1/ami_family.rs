//! The AMI families an EC2NodeClass names (`amiFamily`, or an alias's
//! family): which bootstrap format its images read.

/// The bootstrap format an AMI family's images read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmiFamily {
    /// Amazon Linux 2023 (nodeadm `NodeConfig`).
    Al2023,
    /// Amazon Linux 2 (`/etc/eks/bootstrap.sh`).
    Al2,
    /// Bottlerocket (TOML settings).
    Bottlerocket,
    /// The user's own image and user data, passed through untouched.
    Custom,
}

impl AmiFamily {
    /// Parses an alias family or `amiFamily` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "al2023" => Some(AmiFamily::Al2023),
            "al2" => Some(AmiFamily::Al2),
            "bottlerocket" => Some(AmiFamily::Bottlerocket),
            "custom" => Some(AmiFamily::Custom),
            _ => None,
        }
    }

    /// The family of an EC2NodeClass: its alias's, else `amiFamily`, else Custom
    /// (a NodeClass selecting AMIs by id, name or tags brings its own bootstrap).
    pub fn of(class: &super::EC2NodeClass) -> Self {
        let alias_family = class
            .spec
            .ami_selector_terms
            .iter()
            .find_map(|t| t.alias.as_deref())
            .and_then(|a| a.split('@').next())
            .and_then(AmiFamily::parse);
        alias_family
            .or_else(|| class.spec.ami_family.as_deref().and_then(AmiFamily::parse))
            .unwrap_or(AmiFamily::Custom)
    }

    /// The device whose size is the node's ephemeral storage when no block
    /// device mapping is marked `rootVolume` (upstream's `EphemeralBlockDevice`).
    pub fn ephemeral_device(self) -> Option<&'static str> {
        match self {
            AmiFamily::Al2023 | AmiFamily::Al2 => Some("/dev/xvda"),
            AmiFamily::Bottlerocket => Some("/dev/xvdb"),
            AmiFamily::Custom => None,
        }
    }
}
