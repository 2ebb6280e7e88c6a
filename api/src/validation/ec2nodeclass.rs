//! EC2NodeClass validation.

use super::{Errors, FieldPath, ValidationErrors};
use crate::v1::*;

/// AMI alias families (`family@version`).
const ALIAS_FAMILIES: &[(&str, &str)] = &[
    ("al2", "AL2"),
    ("al2023", "AL2023"),
    ("bottlerocket", "Bottlerocket"),
    ("windows2019", "Windows2019"),
    ("windows2022", "Windows2022"),
    ("windows2025", "Windows2025"),
];

/// Tag keys Karpenter sets itself; users may not set them.
const RESTRICTED_TAGS: &[&str] = &[
    "eks:eks-cluster-name",
    "kubernetes.io/cluster/",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
];

/// What upstream's CRD also says of an empty list of selector terms: its
/// exclusivity rules are written `!self.all(x, has(x.id) && ...)`, and
/// `all` holds on an empty list, so they fail there too. A real API server
/// with upstream's CRDs reports these, so the Rust validation does as well.
const EMPTY_LIST_QUIRKS: &[(&str, &str)] = &[
    (
        "subnetSelectorTerms",
        "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
    ),
    (
        "securityGroupSelectorTerms",
        "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
    ),
    (
        "securityGroupSelectorTerms",
        "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
    ),
    (
        "capacityReservationSelectorTerms",
        "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
    ),
];

const RESERVED_KEYS: &[&str] = &["cpu", "memory", "ephemeral-storage", "pid"];
const EVICTION_SIGNALS: &[&str] = &[
    "memory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "pid.available",
];

/// Validates an EC2NodeClass, reporting every problem at once.
pub fn ec2nodeclass(class: &EC2NodeClass) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let name = class.metadata.name.as_deref();
    super::check_name(&mut errors, name);
    let spec = FieldPath::new("spec");
    let s = &class.spec;
    subnet_terms(
        &mut errors,
        &spec.child("subnetSelectorTerms"),
        &s.subnet_selector_terms,
    );
    security_group_terms(
        &mut errors,
        &spec.child("securityGroupSelectorTerms"),
        &s.security_group_selector_terms,
    );
    if let Some(terms) = &s.capacity_reservation_selector_terms {
        capacity_reservation_terms(
            &mut errors,
            &spec.child("capacityReservationSelectorTerms"),
            terms,
        );
    }
    ami(&mut errors, &spec, s);
    identity(&mut errors, &spec, s);
    if let Some(tags) = &s.tags {
        instance_tags(&mut errors, &spec.child("tags"), tags);
    }
    if let Some(kubelet) = &s.kubelet {
        kubelet_config(&mut errors, &spec.child("kubelet"), kubelet);
    }
    block_devices(
        &mut errors,
        &spec.child("blockDeviceMappings"),
        s.block_device_mappings.as_deref().unwrap_or_default(),
    );
    if let Some(policy) = &s.instance_store_policy {
        errors.check(
            policy == "RAID0",
            &spec.child("instanceStorePolicy"),
            format!("must be RAID0 (got {policy:?})"),
        );
    }
    if let Some(options) = &s.metadata_options {
        metadata_options(&mut errors, &spec.child("metadataOptions"), options);
    }
    super::network::check(&mut errors, &spec, s);
    errors.finish("EC2NodeClass", name)
}

/// Validates a change from `old` to `new` (transition rules), then `new` itself.
pub fn ec2nodeclass_update(old: &EC2NodeClass, new: &EC2NodeClass) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let spec = FieldPath::new("spec");
    if old.spec.role.is_some() && new.spec.role.is_none() {
        errors.add(
            &spec.child("role"),
            "changing from 'role' to 'instanceProfile' is not supported. You must delete and recreate this node class if you want to change this.",
        );
    }
    if old.spec.instance_profile.is_some() && new.spec.instance_profile.is_none() {
        errors.add(
            &spec.child("instanceProfile"),
            "changing from 'instanceProfile' to 'role' is not supported. You must delete and recreate this node class if you want to change this.",
        );
    }
    let name = new.metadata.name.as_deref();
    super::with_object_rules(errors, "EC2NodeClass", name, ec2nodeclass(new))
}

fn term_count(errors: &mut Errors, path: &FieldPath, len: usize, min: usize) {
    errors.check(
        (min..=30).contains(&len),
        path,
        format!("must have between {min} and 30 terms (got {len})"),
    );
}

/// Upstream's rule for the subnet and security group terms: not empty, then at most 30.
fn required_terms(errors: &mut Errors, path: &FieldPath, len: usize, field: &str) {
    if len == 0 {
        errors.add(path, format!("{field} cannot be empty"));
        for rule in EMPTY_LIST_QUIRKS
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, rule)| rule)
        {
            errors.add(path, *rule);
        }
    } else {
        term_count(errors, path, len, 1);
    }
}

fn selector_tags(errors: &mut Errors, path: &FieldPath, tags: Option<&StringMap>) {
    for (key, value) in tags.into_iter().flatten() {
        errors.check(
            !key.is_empty() && !value.is_empty(),
            &path.key(key),
            "empty tag keys or values aren't supported",
        );
    }
}

/// A term selecting by tags or by id, never both.
fn tags_or_id(
    errors: &mut Errors,
    path: &FieldPath,
    tags: Option<&StringMap>,
    id: Option<&str>,
    id_prefix: &str,
    exclusive: &str,
) {
    errors.check(
        tags.is_some() || id.is_some(),
        path,
        "expected at least one, got none, ['tags', 'id']",
    );
    errors.check(id.is_none() || tags.is_none(), path, exclusive);
    selector_tags(errors, &path.child("tags"), tags);
    aws_id(errors, &path.child("id"), id, id_prefix);
}

fn subnet_terms(errors: &mut Errors, path: &FieldPath, terms: &[SubnetSelectorTerm]) {
    required_terms(errors, path, terms.len(), "subnetSelectorTerms");
    for (i, t) in terms.iter().enumerate() {
        let p = path.index(i);
        let exclusive = "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term";
        tags_or_id(
            errors,
            &p,
            t.tags.as_ref(),
            t.id.as_deref(),
            "subnet-",
            exclusive,
        );
    }
}

fn security_group_terms(
    errors: &mut Errors,
    path: &FieldPath,
    terms: &[SecurityGroupSelectorTerm],
) {
    required_terms(errors, path, terms.len(), "securityGroupSelectorTerms");
    for (i, t) in terms.iter().enumerate() {
        let p = path.index(i);
        let set = [t.tags.is_some(), t.id.is_some(), t.name.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        errors.check(
            set > 0,
            &p,
            "expected at least one, got none, ['tags', 'id', 'name']",
        );
        if set > 1 && t.id.is_some() {
            errors.add(&p, "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term");
        } else if set > 1 && t.name.is_some() {
            errors.add(&p, "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term");
        }
        selector_tags(errors, &p.child("tags"), t.tags.as_ref());
        aws_id(errors, &p.child("id"), t.id.as_deref(), "sg-");
    }
}

fn capacity_reservation_terms(
    errors: &mut Errors,
    path: &FieldPath,
    terms: &[CapacityReservationSelectorTerm],
) {
    term_count(errors, path, terms.len(), 0);
    if terms.is_empty() {
        let quirks = EMPTY_LIST_QUIRKS.iter();
        for (_, rule) in quirks.filter(|(f, _)| *f == "capacityReservationSelectorTerms") {
            errors.add(path, *rule);
        }
    }
    for (i, t) in terms.iter().enumerate() {
        let p = path.index(i);
        errors.check(
            t.tags.is_some() || t.id.is_some() || t.instance_match_criteria.is_some(),
            &p,
            "expected at least one, got none, ['tags', 'id', 'instanceMatchCriteria']",
        );
        let others =
            t.tags.is_some() || t.owner_id.is_some() || t.instance_match_criteria.is_some();
        errors.check(
            t.id.is_none() || !others,
            &p,
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
        );
        selector_tags(errors, &p.child("tags"), t.tags.as_ref());
        aws_id(errors, &p.child("id"), t.id.as_deref(), "cr-");
        if let Some(criteria) = &t.instance_match_criteria {
            errors.check(
                matches!(criteria.as_str(), "open" | "targeted"),
                &p.child("instanceMatchCriteria"),
                format!("must be one of open, targeted (got {criteria:?})"),
            );
        }
        if let Some(owner) = &t.owner_id {
            errors.check(
                owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()),
                &p.child("ownerID"),
                format!("must be a 12-digit AWS account id (got {owner:?})"),
            );
        }
    }
}

/// `^<prefix>[0-9a-z]+$`.
pub(super) fn aws_id(errors: &mut Errors, path: &FieldPath, id: Option<&str>, prefix: &str) {
    let Some(id) = id else { return };
    let valid = id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    errors.check(
        valid,
        path,
        format!("must match '^{prefix}[0-9a-z]+$' (got {id:?})"),
    );
}

fn ami(errors: &mut Errors, spec: &FieldPath, s: &EC2NodeClassSpec) {
    let path = spec.child("amiSelectorTerms");
    let terms = &s.ami_selector_terms;
    term_count(errors, &path, terms.len(), 1);
    let mut alias_families = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        let p = path.index(i);
        let set = [
            t.tags.is_some(),
            t.id.is_some(),
            t.name.is_some(),
            t.alias.is_some(),
            t.ssm_parameter.is_some(),
        ];
        let count = set.iter().filter(|b| **b).count();
        errors.check(
            count > 0,
            &p,
            "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
        );
        let others = count + usize::from(t.owner.is_some()) > 1;
        if t.id.is_some() && others {
            errors.add(&p, "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms");
        }
        if let Some(alias) = &t.alias {
            if others {
                errors.add(&p, "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms");
            }
            check_alias(errors, &p.child("alias"), alias);
            // As upstream's rule reads it: the part before any '@', even of a
            // malformed alias.
            let prefix = alias.split('@').next().unwrap_or_default();
            alias_families.extend(
                ALIAS_FAMILIES
                    .iter()
                    .find(|(name, _)| *name == prefix)
                    .map(|(_, family)| *family),
            );
        }
        selector_tags(errors, &p.child("tags"), t.tags.as_ref());
        aws_id(errors, &p.child("id"), t.id.as_deref(), "ami-");
    }
    let has_alias = terms.iter().any(|t| t.alias.is_some());
    if has_alias && terms.len() > 1 {
        errors.add(&path, "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms");
    }
    let family_path = spec.child("amiFamily");
    match &s.ami_family {
        Some(family) if !AMI_FAMILIES.contains(&family.as_str()) => {
            errors.add(
                &family_path,
                format!(
                    "must be one of {} (got {family:?})",
                    AMI_FAMILIES.join(", ")
                ),
            );
        }
        Some(family) => {
            alias_families.dedup();
            for from_alias in alias_families {
                if family != from_alias && family != "Custom" {
                    let article = if from_alias.starts_with('A') {
                        "an"
                    } else {
                        "a"
                    };
                    errors.add(
                        &family_path,
                        format!("if set, amiFamily must be '{from_alias}' or 'Custom' when using {article} {from_alias} alias (got {family:?})"),
                    );
                }
            }
        }
        None if !has_alias => errors.add(
            &family_path,
            "must specify amiFamily if amiSelectorTerms does not contain an alias",
        ),
        None => {}
    }
}

/// Checks `family@version`.
fn check_alias(errors: &mut Errors, path: &FieldPath, alias: &str) {
    let Some((family, version)) = alias.split_once('@').filter(|(f, v)| {
        !f.is_empty() && !v.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric())
    }) else {
        errors.add(path, format!("'alias' is improperly formatted, must match the format 'family@version' (got {alias:?})"));
        return;
    };
    if !ALIAS_FAMILIES.iter().any(|(name, _)| *name == family) {
        errors.add(
            path,
            "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'",
        );
        return;
    };
    if family.starts_with("windows") && version != "latest" {
        errors.add(path, "windows families may only specify version 'latest'");
    }
}

fn identity(errors: &mut Errors, spec: &FieldPath, s: &EC2NodeClassSpec) {
    match (&s.role, &s.instance_profile) {
        (Some(_), Some(_)) | (None, None) => errors.add(
            spec,
            "must specify exactly one of ['role', 'instanceProfile']",
        ),
        (Some(role), None) => errors.check(
            !role.is_empty(),
            &spec.child("role"),
            "role cannot be empty",
        ),
        (None, Some(profile)) => errors.check(
            !profile.is_empty(),
            &spec.child("instanceProfile"),
            "instanceProfile cannot be empty",
        ),
    }
}

fn instance_tags(errors: &mut Errors, path: &FieldPath, tags: &StringMap) {
    for key in tags.keys() {
        let p = path.key(key);
        if key.is_empty() {
            errors.add(&p, "empty tag keys aren't supported");
        } else if let Some(restricted) = RESTRICTED_TAGS.iter().find(|r| {
            if r.ends_with('/') {
                key.starts_with(*r)
            } else {
                key == *r
            }
        }) {
            errors.add(
                &p,
                format!("tag contains a restricted tag matching {restricted}"),
            );
        }
    }
}

fn kubelet_config(errors: &mut Errors, path: &FieldPath, k: &KubeletConfiguration) {
    for (field, value) in [
        ("maxPods", k.max_pods),
        ("podsPerCore", k.pods_per_core),
        ("evictionMaxPodGracePeriod", k.eviction_max_pod_grace_period),
    ] {
        if let Some(v) = value {
            errors.check(
                v >= 0,
                &path.child(field),
                format!("must not be negative (got {v})"),
            );
        }
    }
    for (i, ip) in k.cluster_dns.iter().flatten().enumerate() {
        errors.check(
            ip.parse::<std::net::IpAddr>().is_ok(),
            &path.child("clusterDNS").index(i),
            format!("must be an IP address (got {ip:?})"),
        );
    }
    for (field, map) in [
        ("systemReserved", &k.system_reserved),
        ("kubeReserved", &k.kube_reserved),
    ] {
        for (key, value) in map.iter().flatten() {
            let p = path.child(field).key(key);
            errors.check(
                RESERVED_KEYS.contains(&key.as_str()),
                &p,
                format!("valid keys for {field} are ['cpu','memory','ephemeral-storage','pid']"),
            );
            match value.parse::<crate::quantity::Quantity>() {
                Ok(q) => errors.check(
                    q.nanos() >= 0,
                    &p,
                    format!("{field} value cannot be a negative resource quantity"),
                ),
                Err(e) => errors.add(&p, e.to_string()),
            }
        }
    }
    for (field, map) in [
        ("evictionHard", &k.eviction_hard),
        ("evictionSoft", &k.eviction_soft),
    ] {
        for (key, value) in map.iter().flatten() {
            let p = path.child(field).key(key);
            eviction_signal(errors, &p, field, key);
            errors.result(&p, eviction_threshold(value));
        }
    }
    let grace = k.eviction_soft_grace_period.as_ref();
    for (key, value) in grace.into_iter().flatten() {
        let p = path.child("evictionSoftGracePeriod").key(key);
        eviction_signal(errors, &p, "evictionSoftGracePeriod", key);
        errors.result(&p, crate::duration::parse(value));
        errors.check(
            k.eviction_soft
                .as_ref()
                .is_some_and(|soft| soft.contains_key(key)),
            &p,
            "evictionSoftGracePeriod OwnerKey does not have a matching evictionSoft",
        );
    }
    for key in k.eviction_soft.iter().flat_map(|m| m.keys()) {
        errors.check(
            grace.is_some_and(|g| g.contains_key(key)),
            &path.child("evictionSoft").key(key),
            "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod",
        );
    }
    if let (Some(high), Some(low)) = (
        k.image_gc_high_threshold_percent,
        k.image_gc_low_threshold_percent,
    ) {
        errors.check(
            high > low,
            &path.child("imageGCHighThresholdPercent"),
            "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent",
        );
    }
    for (field, value) in [
        (
            "imageGCHighThresholdPercent",
            k.image_gc_high_threshold_percent,
        ),
        (
            "imageGCLowThresholdPercent",
            k.image_gc_low_threshold_percent,
        ),
    ] {
        if let Some(v) = value {
            errors.check(
                (0..=100).contains(&v),
                &path.child(field),
                format!("must be between 0 and 100 (got {v})"),
            );
        }
    }
}

fn eviction_signal(errors: &mut Errors, path: &FieldPath, field: &str, key: &str) {
    errors.check(
        EVICTION_SIGNALS.contains(&key),
        path,
        format!("valid keys for {field} are ['memory.available','nodefs.available','nodefs.inodesFree','imagefs.available','imagefs.inodesFree','pid.available']"),
    );
}

/// A percentage (`10%`, `5.5%`) up to 100 or a non-negative quantity.
fn eviction_threshold(value: &str) -> Result<(), String> {
    if let Some(percent) = value.strip_suffix('%') {
        return match percent.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(()),
            _ => Err(format!(
                "must be a percentage between 0% and 100% or a quantity (got {value:?})"
            )),
        };
    }
    match value.parse::<crate::quantity::Quantity>() {
        Ok(q) if q.nanos() >= 0 => Ok(()),
        Ok(_) => Err(format!("must not be negative (got {value:?})")),
        Err(e) => Err(e.to_string()),
    }
}

fn block_devices(errors: &mut Errors, path: &FieldPath, mappings: &[BlockDeviceMapping]) {
    errors.check(
        mappings.len() <= 50,
        path,
        format!("must have at most 50 items (got {})", mappings.len()),
    );
    let roots = mappings
        .iter()
        .filter(|m| m.root_volume == Some(true))
        .count();
    errors.check(
        roots <= 1,
        path,
        "must have only one blockDeviceMappings with rootVolume",
    );
    for (i, mapping) in mappings.iter().enumerate() {
        let Some(ebs) = &mapping.ebs else { continue };
        let p = path.index(i).child("ebs");
        errors.check(
            ebs.snapshot_id.is_some() || ebs.volume_size.is_some(),
            &p,
            "snapshotID or volumeSize must be defined",
        );
        if let Some(size) = &ebs.volume_size {
            errors.result(&p.child("volumeSize"), volume_size(size));
        }
        if let Some(kind) = &ebs.volume_type {
            errors.check(
                VOLUME_TYPES.contains(&kind.as_str()),
                &p.child("volumeType"),
                format!("must be one of {} (got {kind:?})", VOLUME_TYPES.join(", ")),
            );
        }
        if let Some(rate) = ebs.volume_initialization_rate {
            errors.check(
                (100..=300).contains(&rate),
                &p.child("volumeInitializationRate"),
                format!("must be between 100 and 300 MiB/s (got {rate})"),
            );
            errors.check(
                ebs.snapshot_id.as_deref().is_some_and(|s| !s.is_empty()),
                &p,
                "snapshotID must be set when volumeInitializationRate is set",
            );
        }
    }
}

/// EBS volumes are 1Gi to 64Ti, written in G/Gi/T/Ti.
fn volume_size(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "must be a size from 1Gi to 64Ti written with a G, Gi, T or Ti suffix (got {text:?})"
        )
    };
    if !["G", "Gi", "T", "Ti"].iter().any(|s| {
        text.strip_suffix(s)
            .is_some_and(|n| n.parse::<u64>().is_ok())
    }) {
        return Err(bad());
    }
    let q: crate::quantity::Quantity = text.parse().map_err(|_| bad())?;
    let (min, max) = (
        crate::quantity::Quantity::from_bytes(1 << 30),
        crate::quantity::Quantity::from_bytes(64 << 40),
    );
    if q < min || q > max {
        return Err(bad());
    }
    Ok(())
}

fn metadata_options(errors: &mut Errors, path: &FieldPath, m: &MetadataOptions) {
    let fields = [
        ("httpEndpoint", &m.http_endpoint, ["enabled", "disabled"]),
        (
            "httpProtocolIPv6",
            &m.http_protocol_ipv6,
            ["enabled", "disabled"],
        ),
        ("httpTokens", &m.http_tokens, ["required", "optional"]),
    ];
    for (field, value, allowed) in fields {
        if let Some(v) = value {
            errors.check(
                allowed.contains(&v.as_str()),
                &path.child(field),
                format!("must be one of {} (got {v:?})", allowed.join(", ")),
            );
        }
    }
    if let Some(hops) = m.http_put_response_hop_limit {
        errors.check(
            (1..=64).contains(&hops),
            &path.child("httpPutResponseHopLimit"),
            format!("must be between 1 and 64 (got {hops})"),
        );
    }
}
