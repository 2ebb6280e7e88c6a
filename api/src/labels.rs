//! Well-known labels, annotations, taints and the label-domain rules of Karpenter v1.
//!
//! The names here are part of the compatibility contract (DESIGN.md §2): users'
//! node selectors, dashboards and alerts key off them, so they never change.

use crate::error::Invalid;

/// `karpenter.sh` API group (NodePool, NodeClaim).
pub const GROUP: &str = "karpenter.sh";
/// `karpenter.k8s.aws` API group (EC2NodeClass).
pub const AWS_GROUP: &str = "karpenter.k8s.aws";

/// Label naming the NodePool that launched a node.
pub const NODEPOOL: &str = "karpenter.sh/nodepool";
/// Label carrying `spot`, `on-demand` or `reserved`.
pub const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
/// Label set once a node has registered with the cluster.
pub const REGISTERED: &str = "karpenter.sh/registered";
/// Label set once a node is initialized.
pub const INITIALIZED: &str = "karpenter.sh/initialized";
/// Label naming the EC2NodeClass of a node.
pub const EC2NODECLASS: &str = "karpenter.k8s.aws/ec2nodeclass";
/// Label naming the NodeClaim of a node (used as an instance tag).
pub const NODECLAIM: &str = "karpenter.sh/nodeclaim";

/// `kubernetes.io/hostname`.
pub const HOSTNAME: &str = "kubernetes.io/hostname";
/// `kubernetes.io/arch`.
pub const ARCH: &str = "kubernetes.io/arch";
/// `kubernetes.io/os`.
pub const OS: &str = "kubernetes.io/os";
/// `node.kubernetes.io/instance-type`.
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// `topology.kubernetes.io/zone`.
pub const ZONE: &str = "topology.kubernetes.io/zone";
/// `topology.kubernetes.io/region`.
pub const REGION: &str = "topology.kubernetes.io/region";
/// `topology.k8s.aws/zone-id`.
pub const ZONE_ID: &str = "topology.k8s.aws/zone-id";
/// `node.kubernetes.io/windows-build`.
pub const WINDOWS_BUILD: &str = "node.kubernetes.io/windows-build";

/// Capacity type value for spot instances.
pub const CAPACITY_TYPE_SPOT: &str = "spot";
/// Capacity type value for on-demand instances.
pub const CAPACITY_TYPE_ON_DEMAND: &str = "on-demand";
/// Capacity type value for capacity reservations.
pub const CAPACITY_TYPE_RESERVED: &str = "reserved";

/// Pod or node annotation that blocks voluntary disruption.
pub const DO_NOT_DISRUPT_ANNOTATION: &str = "karpenter.sh/do-not-disrupt";
/// NodeClaim annotation: whether the scheduler relaxed a requirement's
/// `minValues` to launch it (`"true"`/`"false"`).
pub const MIN_VALUES_RELAXED_ANNOTATION: &str = "karpenter.sh/nodeclaim-min-values-relaxed";
/// NodeClaim annotation: when its node's pods are forced off and the instance
/// terminated whatever PDBs say (RFC 3339), written when the claim is deleted
/// with a `terminationGracePeriod`.
pub const TERMINATION_TIMESTAMP_ANNOTATION: &str = "karpenter.sh/nodeclaim-termination-timestamp";
/// NodeClaim annotation: the instance profile its instance was launched
/// with (the EC2NodeClass status's, at launch).
pub const INSTANCE_PROFILE_ANNOTATION: &str = "karpenter.k8s.aws/instance-profile-name";
/// NodeClaim annotation: its instance carries the `Name`, NodeClaim and
/// cluster-name tags (`"true"`), written once the tagging is done.
pub const TAGGED_ANNOTATION: &str = "karpenter.k8s.aws/tagged";
/// NodeClaim annotation upstream writes with [`TAGGED_ANNOTATION`]: the
/// instance carries the `eks:eks-cluster-name` tag too (`"true"`).
pub const CLUSTER_NAME_TAGGED_ANNOTATION: &str =
    "compatibility.karpenter.k8s.aws/cluster-name-tagged";
/// NodeClaim annotation holding the hash of its NodePool template.
pub const NODEPOOL_HASH_ANNOTATION: &str = "karpenter.sh/nodepool-hash";
/// Version of the NodePool hash algorithm.
pub const NODEPOOL_HASH_VERSION_ANNOTATION: &str = "karpenter.sh/nodepool-hash-version";
/// NodeClaim annotation holding the hash of its EC2NodeClass.
pub const EC2NODECLASS_HASH_ANNOTATION: &str = "karpenter.k8s.aws/ec2nodeclass-hash";
/// Version of the EC2NodeClass hash algorithm.
pub const EC2NODECLASS_HASH_VERSION_ANNOTATION: &str =
    "karpenter.k8s.aws/ec2nodeclass-hash-version";
/// Finalizer Karpenter puts on NodeClaims and Nodes it terminates.
pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";

/// The Elastic Fabric Adapters a node offers pods (the EFA device plugin's
/// resource); a NodeClaim that asks for it is launched with every adapter
/// its instance type can attach.
pub const RESOURCE_EFA: &str = "vpc.amazonaws.com/efa";

/// The branch network interfaces a node offers pods with their own
/// security groups (the VPC resource controller's resource).
pub const RESOURCE_POD_ENI: &str = "vpc.amazonaws.com/pod-eni";

/// Taint key put on a node until it registers.
pub const UNREGISTERED_TAINT_KEY: &str = "karpenter.sh/unregistered";
/// Taint key put on a node that is being disrupted.
pub const DISRUPTED_TAINT_KEY: &str = "karpenter.sh/disrupted";

/// AWS well-known labels carried by every instance type (`karpenter.k8s.aws/...`).
pub const AWS_WELL_KNOWN: &[&str] = &[
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-local-nvme",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-ebs-bandwidth",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name",
    "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count",
    "karpenter.k8s.aws/instance-capability-flex",
    "karpenter.k8s.aws/capacity-reservation-id",
    "karpenter.k8s.aws/capacity-reservation-type",
    "topology.k8s.aws/zone-id",
];

/// `karpenter.k8s.aws/instance-tenancy`: `default` or `dedicated`.
pub const INSTANCE_TENANCY: &str = "karpenter.k8s.aws/instance-tenancy";
/// `karpenter.k8s.aws/capacity-reservation-interruptible`: whether the reservation may be interrupted.
pub const CAPACITY_RESERVATION_INTERRUPTIBLE: &str =
    "karpenter.k8s.aws/capacity-reservation-interruptible";
/// `karpenter.k8s.aws/placement-group-id`: the placement group a node launched into.
pub const PLACEMENT_GROUP_ID: &str = "karpenter.k8s.aws/placement-group-id";
/// `karpenter.k8s.aws/placement-group-partition`: its partition (partition groups).
pub const PLACEMENT_GROUP_PARTITION: &str = "karpenter.k8s.aws/placement-group-partition";

/// The `karpenter.k8s.aws` labels a NodePool may set or require, in the order
/// upstream's CEL rules list them (every other key of that domain is restricted).
pub const AWS_LABEL_EXCEPTIONS: &[&str] = &[
    INSTANCE_TENANCY,
    "karpenter.k8s.aws/capacity-reservation-type",
    "karpenter.k8s.aws/capacity-reservation-id",
    CAPACITY_RESERVATION_INTERRUPTIBLE,
    EC2NODECLASS,
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-local-nvme",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-ebs-bandwidth",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name",
    "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count",
    "karpenter.k8s.aws/instance-capability-flex",
    PLACEMENT_GROUP_ID,
    PLACEMENT_GROUP_PARTITION,
];

/// The `karpenter.sh` labels a NodePool's requirements may name.
pub const KARPENTER_LABEL_EXCEPTIONS: &[&str] = &[CAPACITY_TYPE, NODEPOOL];

/// Core well-known labels Karpenter schedules on.
pub const CORE_WELL_KNOWN: &[&str] = &[
    NODEPOOL,
    CAPACITY_TYPE,
    ZONE,
    REGION,
    INSTANCE_TYPE,
    ARCH,
    OS,
    WINDOWS_BUILD,
];

/// Kubernetes labels under restricted domains that users may still set.
const KUBERNETES_LABEL_EXCEPTIONS: &[&str] = &[
    "beta.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "failure-domain.beta.kubernetes.io/zone",
    ZONE,
    REGION,
    ARCH,
    OS,
    WINDOWS_BUILD,
];

/// Label domains whose labels are managed by Kubernetes or Karpenter.
pub const RESTRICTED_DOMAINS: &[&str] = &[
    "kubernetes.io",
    "k8s.io",
    "karpenter.sh",
    "karpenter.k8s.aws",
];

/// Sub-domains of restricted domains that are open to users (`node.kubernetes.io/...`).
const ALLOWED_SUBDOMAINS: &[&str] = &[
    "node.kubernetes.io",
    "node-restriction.kubernetes.io",
    "kops.k8s.io",
];

/// Deprecated label names and the names Karpenter uses instead.
const NORMALIZED: &[(&str, &str)] = &[
    ("failure-domain.beta.kubernetes.io/zone", ZONE),
    ("failure-domain.beta.kubernetes.io/region", REGION),
    ("beta.kubernetes.io/arch", ARCH),
    ("beta.kubernetes.io/os", OS),
    ("beta.kubernetes.io/instance-type", INSTANCE_TYPE),
    ("k8s.amazonaws.com/eniConfig", "vpc.amazonaws.com/eniConfig"),
];

/// Maps a deprecated (beta) label name to the one Karpenter uses; others pass through.
pub fn normalize(key: &str) -> &str {
    NORMALIZED
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
}

/// True for labels the scheduler understands without a NodePool defining them.
pub fn is_well_known(key: &str) -> bool {
    let key = normalize(key);
    CORE_WELL_KNOWN.contains(&key) || AWS_WELL_KNOWN.contains(&key)
}

/// The domain part of a label key (`node.kubernetes.io` of `node.kubernetes.io/x`), if any.
pub fn domain(key: &str) -> Option<&str> {
    key.split_once('/').map(|(d, _)| d)
}

/// Why a label key may not appear in a NodePool's template labels or requirements,
/// or `None` when it may. Mirrors upstream's CEL rules and messages.
pub fn restriction(key: &str) -> Option<String> {
    if key == NODEPOOL || key == HOSTNAME {
        return Some(format!("label {key:?} is restricted"));
    }
    if KUBERNETES_LABEL_EXCEPTIONS.contains(&key)
        || AWS_LABEL_EXCEPTIONS.contains(&key)
        || is_well_known(key)
    {
        return None;
    }
    let domain = domain(key)?;
    if ALLOWED_SUBDOMAINS
        .iter()
        .any(|allowed| has_domain(domain, allowed))
    {
        return None;
    }
    RESTRICTED_DOMAINS
        .iter()
        .find(|restricted| has_domain(domain, restricted))
        .map(|restricted| format!("label domain {restricted:?} is restricted"))
}

/// `domain` is `parent` or a sub-domain of it.
fn has_domain(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Checks a label key against Kubernetes' qualified-name syntax
/// (`[prefix/]name`, prefix a DNS subdomain <= 253, name <= 63). Returns the broken rule.
pub fn check_key(key: &str) -> Result<(), Invalid> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|rule| format!("prefix part {rule}"))?;
    }
    if name.is_empty() {
        return Err(Invalid::from("name part must be non-empty"));
    }
    if name.len() > 63 {
        return Err(Invalid::from(
            "name part must be no more than 63 characters",
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(Invalid(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (got {name:?})"
        )));
    }
    Ok(())
}

/// Checks a label value: at most 63 characters, alphanumerics with `-_.` inside, or empty.
pub fn check_value(value: &str) -> Result<(), Invalid> {
    if value.len() > 63 {
        return Err(Invalid(format!(
            "must be no more than 63 characters (got {})",
            value.len()
        )));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        return Err(Invalid(format!(
            "a valid label value must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (got {value:?})"
        )));
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (lower-case, dots between labels, <= 253 characters).
pub fn check_dns_subdomain(value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > 253 {
        return Err(Invalid::from(
            "must be a DNS subdomain of 1 to 253 characters",
        ));
    }
    let valid = value.split('.').all(|part| {
        !part.is_empty()
            && part.len() <= 63
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    });
    if valid {
        Ok(())
    } else {
        Err(Invalid(format!(
            "must be a lowercase RFC 1123 subdomain: alphanumerics, '-' and '.', starting and ending with an alphanumeric (got {value:?})"
        )))
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_labels_normalize_to_stable_names() {
        assert_eq!(normalize("failure-domain.beta.kubernetes.io/zone"), ZONE);
        assert_eq!(normalize("beta.kubernetes.io/instance-type"), INSTANCE_TYPE);
        assert_eq!(normalize("example.com/team"), "example.com/team");
    }

    #[test]
    fn restricted_domains_and_exceptions() {
        assert_eq!(
            restriction(NODEPOOL).as_deref(),
            Some("label \"karpenter.sh/nodepool\" is restricted")
        );
        assert_eq!(
            restriction(HOSTNAME).as_deref(),
            Some("label \"kubernetes.io/hostname\" is restricted")
        );
        assert_eq!(
            restriction("kubernetes.io/custom").as_deref(),
            Some("label domain \"kubernetes.io\" is restricted")
        );
        assert_eq!(
            restriction("sub.k8s.io/custom").as_deref(),
            Some("label domain \"k8s.io\" is restricted")
        );
        assert_eq!(
            restriction("karpenter.k8s.aws/custom").as_deref(),
            Some("label domain \"karpenter.k8s.aws\" is restricted")
        );
        assert_eq!(restriction("karpenter.sh/capacity-type"), None);
        assert_eq!(restriction("karpenter.k8s.aws/instance-family"), None);
        assert_eq!(restriction("node.kubernetes.io/lifecycle"), None);
        assert_eq!(restriction("kops.k8s.io/instancegroup"), None);
        assert_eq!(restriction("topology.kubernetes.io/zone"), None);
        assert_eq!(restriction("example.com/team"), None);
        assert_eq!(restriction("team"), None);
        // A domain that merely ends with the same letters is not a sub-domain.
        assert_eq!(restriction("notkubernetes.io/x"), None);
    }

    #[test]
    fn key_and_value_syntax() {
        assert!(check_key("example.com/team-a").is_ok());
        assert!(check_key("Team_1.x").is_ok());
        assert!(check_key("Example.com/x").is_err());
        assert!(check_key("example.com/").is_err());
        assert!(check_key(&"a".repeat(64)).is_err());
        assert!(check_value("").is_ok());
        assert!(check_value("m5.large").is_ok());
        assert!(check_value("-bad").is_err());
        assert!(check_value(&"v".repeat(64)).is_err());
    }
}
