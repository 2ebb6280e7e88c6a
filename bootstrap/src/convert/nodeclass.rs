//! EC2NodeClass specs from v1alpha1 `AWSNodeTemplate`s (and v1alpha5
//! Provisioners' inline `provider`), from v1beta1 `EC2NodeClass`es, and the
//! stub written for a class the input does not hold.
//!
//! The selector mappings follow upstream's v1beta1 migration code: a
//! `map[string]string` selector becomes terms, its `aws::ids` / `aws-ids`,
//! `aws::name` and `aws::owners` values (comma-separated) multiplied out
//! into one term per combination, every other key a tag all terms carry.

use super::Options;
use super::fields::{Fields, Report};
use serde_json::{Map, Value, json};

/// The AMI families of old manifests and the v1 alias that selects the
/// same images (`None`: v1 has no alias for it).
const FAMILY_ALIASES: &[(&str, Option<&str>)] = &[
    ("AL2", Some("al2")),
    ("AL2023", Some("al2023")),
    ("Bottlerocket", Some("bottlerocket")),
    ("Windows2019", Some("windows2019")),
    ("Windows2022", Some("windows2022")),
    ("Custom", None),
    ("Ubuntu", None),
];

/// Block device fields, the same in every version.
const EBS_FIELDS: &[&str] = &[
    "deleteOnTermination",
    "encrypted",
    "iops",
    "kmsKeyID",
    "snapshotID",
    "throughput",
    "volumeSize",
    "volumeType",
];

/// Metadata service fields, the same in every version.
const METADATA_FIELDS: &[&str] = &[
    "httpEndpoint",
    "httpProtocolIPv6",
    "httpPutResponseHopLimit",
    "httpTokens",
];

/// The v1 spec of a v1alpha1 AWSNodeTemplate's spec, or of a v1alpha5
/// Provisioner's inline `provider` (the same fields).
pub(super) fn from_v1alpha1(
    mut spec: Fields,
    options: &Options,
    report: &mut Report,
) -> Map<String, Value> {
    let mut out = Map::new();
    // The inline provider carried its own apiVersion and kind.
    spec.drop(&["apiVersion", "kind"]);
    for (old, new, what) in [
        ("subnetSelector", "subnetSelectorTerms", "subnets"),
        (
            "securityGroupSelector",
            "securityGroupSelectorTerms",
            "security groups",
        ),
    ] {
        match spec.take_string_map(old, report) {
            Some(selector) if !selector.is_empty() => {
                out.insert(new.into(), Value::Array(selector_terms(selector, false)));
            }
            _ => {
                out.insert(new.into(), discovery_terms(options));
                report.action(
                    &spec.path(old),
                    format!("not in the input: {what} are chosen by the tag `karpenter.sh/discovery: {}`; check that {what} carry it", options.cluster()),
                );
            }
        }
    }
    let family = spec.take_str("amiFamily", report);
    let selector = spec
        .take_string_map("amiSelector", report)
        .filter(|s| !s.is_empty());
    let family_path = spec.path("amiFamily");
    ami(
        &mut out,
        family,
        selector.map(|s| selector_terms(s, true)),
        &family_path,
        "AL2",
        report,
    );
    match spec.take_str("instanceProfile", report) {
        Some(profile) => {
            out.insert("instanceProfile".into(), json!(profile));
        }
        None => missing_identity(&mut out, &spec.path("instanceProfile"), options, report),
    }
    spec.move_same(
        &["userData", "tags", "detailedMonitoring", "context"],
        &mut out,
    );
    block_devices(&mut spec, &mut out, report);
    metadata_options(&mut spec, &mut out, report);
    if spec.take("launchTemplate").is_some() {
        report.action(
            &spec.path("launchTemplate"),
            "v1 launches without a launch template of yours: move its AMI (amiSelectorTerms), user data, security groups and block devices into this EC2NodeClass",
        );
    }
    spec.finish(report);
    out
}

/// The v1 spec of a v1beta1 EC2NodeClass's spec.
pub(super) fn from_v1beta1(mut spec: Fields, report: &mut Report) -> Map<String, Value> {
    let mut out = Map::new();
    spec.move_same(
        &[
            "subnetSelectorTerms",
            "securityGroupSelectorTerms",
            "role",
            "instanceProfile",
            "userData",
            "tags",
            "instanceStorePolicy",
            "detailedMonitoring",
            "associatePublicIPAddress",
            "context",
        ],
        &mut out,
    );
    let family = spec.take_str("amiFamily", report);
    let terms = match spec.take("amiSelectorTerms") {
        Some(Value::Array(terms)) if !terms.is_empty() => Some(terms),
        _ => None,
    };
    let family_path = spec.path("amiFamily");
    ami(&mut out, family, terms, &family_path, "AL2", report);
    block_devices(&mut spec, &mut out, report);
    metadata_options(&mut spec, &mut out, report);
    spec.finish(report);
    out
}

/// The spec written for a class a NodePool names that the input does not
/// hold: everything in it is a choice the user must confirm.
pub(super) fn stub(options: &Options, path: &str, report: &mut Report) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("subnetSelectorTerms".into(), discovery_terms(options));
    out.insert(
        "securityGroupSelectorTerms".into(),
        discovery_terms(options),
    );
    out.insert(
        "amiSelectorTerms".into(),
        json!([{"alias": "al2023@latest"}]),
    );
    report.action(
        path,
        format!("the AWSNodeTemplate it names is not in the input, so this EC2NodeClass is a stub: subnets and security groups are chosen by the tag `karpenter.sh/discovery: {}`, AMIs by the alias al2023@latest (v1alpha5 defaulted to AL2: use al2@latest to keep it, on EKS before 1.33); convert the AWSNodeTemplate too, or check each of these", options.cluster()),
    );
    missing_identity(&mut out, &format!("{path}.role"), options, report);
    out
}

/// `amiFamily` and `amiSelectorTerms` from an old family (defaulting to
/// `default_family`, the old version's default) and old terms: without
/// terms, the family's alias; with terms, the family kept for bootstrap.
fn ami(
    out: &mut Map<String, Value>,
    family: Option<String>,
    terms: Option<Vec<Value>>,
    path: &str,
    default_family: &str,
    report: &mut Report,
) {
    let given = family.is_some();
    let family = family.unwrap_or_else(|| default_family.to_string());
    let alias = FAMILY_ALIASES
        .iter()
        .find(|(name, _)| *name == family)
        .map(|(_, alias)| *alias);
    match (terms, alias) {
        (_, None) => {
            report.action(path, format!("{family:?} is not an AMI family (AL2, AL2023, Bottlerocket, Windows2019, Windows2022, Custom)"));
            out.insert(
                "amiSelectorTerms".into(),
                json!([{"alias": "al2023@latest"}]),
            );
        }
        (Some(terms), Some(_)) if family == "Ubuntu" => {
            out.insert("amiFamily".into(), json!("Custom"));
            out.insert("amiSelectorTerms".into(), Value::Array(terms));
            report.action(path, "v1 has no Ubuntu family: the AMIs are kept with amiFamily Custom, so userData must now hold the whole bootstrap (Ubuntu's /etc/eks/bootstrap.sh call)");
        }
        (Some(terms), Some(_)) => {
            out.insert("amiFamily".into(), json!(family));
            out.insert("amiSelectorTerms".into(), Value::Array(terms));
        }
        (None, Some(Some(alias))) => {
            out.insert(
                "amiSelectorTerms".into(),
                json!([{"alias": format!("{alias}@latest")}]),
            );
            if !given {
                report.note(
                    path,
                    format!(
                        "not set: the old default {family} is kept as the alias {alias}@latest"
                    ),
                );
            }
            if family == "AL2" {
                report.note(
                    path,
                    "AL2 AMIs end with EKS 1.32; plan the move to al2023@latest",
                );
            }
        }
        (None, Some(None)) => {
            out.insert(
                "amiSelectorTerms".into(),
                json!([{"alias": "al2023@latest"}]),
            );
            let why = if family == "Ubuntu" {
                "v1 has no Ubuntu family"
            } else {
                "a Custom family needs AMIs and none are selected"
            };
            report.action(path, format!("{why}: al2023@latest is written; choose amiSelectorTerms (with amiFamily Custom and a userData that joins the cluster) or keep AL2023"));
        }
    }
}

/// The node role placeholder when the input names no identity.
fn missing_identity(
    out: &mut Map<String, Value>,
    path: &str,
    options: &Options,
    report: &mut Report,
) {
    let role = format!("KarpenterNodeRole-{}", options.cluster());
    out.insert("role".into(), json!(role));
    report.action(
        path,
        format!("no instance profile in the input (v1alpha5 used the `aws.defaultInstanceProfile` setting): `role: {role}` is written, the bootstrap's default node role; set the node role your nodes use, or `instanceProfile`"),
    );
}

/// One term selecting by the cluster's discovery tag.
fn discovery_terms(options: &Options) -> Value {
    json!([{"tags": {"karpenter.sh/discovery": options.cluster()}}])
}

/// Terms for an old selector map (see the module's comment); `ami` also
/// reads `aws::name` and `aws::owners`.
fn selector_terms(selector: Map<String, Value>, ami: bool) -> Vec<Value> {
    let split = |v: &Value| -> Vec<String> {
        v.as_str()
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut owners = Vec::new();
    let mut tags = Map::new();
    for (key, value) in selector {
        match key.as_str() {
            "aws-ids" | "aws::ids" => ids = split(&value),
            "aws::name" if ami => names = split(&value),
            "aws::owners" if ami => owners = split(&value),
            _ => {
                tags.insert(key, value);
            }
        }
    }
    let or_empty = |v: Vec<String>| if v.is_empty() { vec![String::new()] } else { v };
    let mut terms = Vec::new();
    for owner in or_empty(owners) {
        for id in or_empty(ids.clone()) {
            for name in or_empty(names.clone()) {
                let mut term = Map::new();
                if !tags.is_empty() {
                    term.insert("tags".into(), Value::Object(tags.clone()));
                }
                for (key, value) in [("id", &id), ("name", &name), ("owner", &owner)] {
                    if !value.is_empty() {
                        term.insert(key.into(), json!(value));
                    }
                }
                terms.push(Value::Object(term));
            }
        }
    }
    terms
}

/// `blockDeviceMappings`, field by field.
fn block_devices(spec: &mut Fields, out: &mut Map<String, Value>, report: &mut Report) {
    let path = spec.path("blockDeviceMappings");
    let Some(value) = spec.take("blockDeviceMappings") else {
        return;
    };
    let Value::Array(items) = value else {
        report.action(&path, "expected a list; not converted");
        return;
    };
    let mut mappings = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let mut old = Fields::of(&format!("{path}[{i}]"), item, report);
        let mut mapping = Map::new();
        old.move_same(&["deviceName", "rootVolume"], &mut mapping);
        if let Some(mut ebs) = old.take_fields("ebs", report) {
            let mut new = Map::new();
            ebs.move_same(EBS_FIELDS, &mut new);
            ebs.finish(report);
            mapping.insert("ebs".into(), Value::Object(new));
        }
        old.finish(report);
        mappings.push(Value::Object(mapping));
    }
    out.insert("blockDeviceMappings".into(), Value::Array(mappings));
}

/// `metadataOptions`, field by field; without it, the v1 default's change
/// of hop limit is pointed out.
fn metadata_options(spec: &mut Fields, out: &mut Map<String, Value>, report: &mut Report) {
    let path = spec.path("metadataOptions");
    match spec.take_fields("metadataOptions", report) {
        Some(mut old) => {
            let mut new = Map::new();
            old.move_same(METADATA_FIELDS, &mut new);
            old.finish(report);
            out.insert("metadataOptions".into(), Value::Object(new));
        }
        None => report.note(
            &path,
            "not set: v1's default hop limit is 1 (it was 2), so pods without host networking no longer reach the instance metadata service; set metadataOptions.httpPutResponseHopLimit: 2 if they must",
        ),
    }
}
