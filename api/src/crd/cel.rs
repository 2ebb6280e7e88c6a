//! The CEL rules of the generated CRDs: upstream v1.14.1's, rule for rule and
//! message for message, so a real API server refuses what upstream's CRDs
//! refuse. `controller/tests/upstream_contract.rs` compares them with
//! upstream's files; [`crate::validation`] checks the same things in Rust
//! (for the provider, the controller and kubesim) with the same messages.
//!
//! A few rules are kept exactly as upstream wrote them although they look
//! odd, because a difference would be a different contract:
//! - `!self.all(x, has(x.id) && ...)` on selector terms refuses a list only
//!   when *every* term combines `id` with another field (the Rust validation
//!   refuses any such term);
//! - the template-labels rule lists `capacity-reservation-interruptible` twice.

use crate::labels::{AWS_LABEL_EXCEPTIONS, KARPENTER_LABEL_EXCEPTIONS};

/// A rule: the property path it sits on (`[]` steps into list items), the
/// CEL expression and its message.
pub type Rule = (&'static str, String, &'static str);

/// The valid eviction signals, as upstream's kubelet rules list them.
const EVICTION_SIGNALS: &str = "['memory.available','nodefs.available','nodefs.inodesFree','imagefs.available','imagefs.inodesFree','pid.available']";

/// `["a", "b"]`, as the restricted-label rules quote their lists.
fn quoted(keys: &[&str]) -> String {
    let items: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The restricted-domain rules of a label-key position: `subject` is `self`
/// (a requirement key) or `x` (each key of a label map, inside `self.all`).
fn label_domain_rules(path: &'static str, subject: &str, aws_keys: &[&str]) -> Vec<Rule> {
    let wrap = |test: String| {
        if subject == "self" {
            test
        } else {
            format!("self.all({subject}, {test})")
        }
    };
    vec![
        (
            path,
            wrap(format!(
                "{subject} in {} || !{subject}.find(\"^([^/]+)\").endsWith(\"karpenter.sh\")",
                quoted(KARPENTER_LABEL_EXCEPTIONS)
            )),
            "label domain \"karpenter.sh\" is restricted",
        ),
        (
            path,
            wrap(format!(
                "{subject} in {} || !{subject}.find(\"^([^/]+)\").endsWith(\"karpenter.k8s.aws\")",
                quoted(aws_keys)
            )),
            "label domain \"karpenter.k8s.aws\" is restricted",
        ),
        (
            path,
            wrap(format!("{subject} != \"kubernetes.io/hostname\"")),
            "label \"kubernetes.io/hostname\" is restricted",
        ),
    ]
}

/// The rules on a requirements list and its keys.
fn requirement_rules(list: &'static str, key: &'static str) -> Vec<Rule> {
    let mut rules = vec![
        (
            list,
            "self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)".into(),
            "requirements with operator 'In' must have a value defined",
        ),
        (
            list,
            "self.all(x, (x.operator == 'Gt' || x.operator == 'Lt' || x.operator == 'Gte' || x.operator == 'Lte') ? (x.values.size() == 1 && int(x.values[0]) >= 0) : true)".into(),
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
        ),
        (
            list,
            "self.all(x, (x.operator == 'In' && has(x.minValues)) ? x.values.size() >= x.minValues : true)".into(),
            "requirements with 'minValues' must have at least that many values specified in the 'values' field",
        ),
    ];
    rules.extend(label_domain_rules(key, "self", AWS_LABEL_EXCEPTIONS));
    rules
}

/// `nodeClassRef` fields may not be empty.
fn node_class_ref_rules(path: &'static [&'static str; 3]) -> Vec<Rule> {
    path.iter()
        .zip(["group", "kind", "name"])
        .map(|(p, field)| {
            let message = match field {
                "group" => "group may not be empty",
                "kind" => "kind may not be empty",
                _ => "name may not be empty",
            };
            (*p, "self != ''".to_string(), message)
        })
        .collect()
}

/// Every CEL rule of `kind`'s CRD.
pub fn rules(kind: &str) -> Vec<Rule> {
    match kind {
        "NodePool" => nodepool(),
        "NodeClaim" => nodeclaim(),
        "EC2NodeClass" => ec2nodeclass(),
        "NodeOverlay" => nodeoverlay(),
        "CapacityBuffer" => capacitybuffer(),
        _ => Vec::new(),
    }
}

fn nodepool() -> Vec<Rule> {
    let mut rules: Vec<Rule> = vec![
        (
            "spec",
            "has(self.replicas) == has(oldSelf.replicas)".into(),
            "Cannot transition NodePool between static (replicas set) and dynamic (replicas unset) provisioning modes",
        ),
        (
            "spec",
            "!has(self.replicas) || (!has(self.limits) || size(self.limits) == 0 || (size(self.limits) == 1 && 'nodes' in self.limits))".into(),
            "only 'limits.nodes' is supported on static NodePools",
        ),
        (
            "spec",
            "!has(self.replicas) || !has(self.weight)".into(),
            "'weight' is not supported on static NodePools",
        ),
        (
            "spec.disruption.budgets",
            "self.all(x, has(x.schedule) == has(x.duration))".into(),
            "'schedule' must be set with 'duration'",
        ),
        (
            "spec.template.spec.nodeClassRef",
            "self.group == oldSelf.group".into(),
            "nodeClassRef.group is immutable",
        ),
        (
            "spec.template.spec.nodeClassRef",
            "self.kind == oldSelf.kind".into(),
            "nodeClassRef.kind is immutable",
        ),
    ];
    // Upstream lists this one label twice in the template-labels rule.
    let mut template_label_keys = AWS_LABEL_EXCEPTIONS.to_vec();
    template_label_keys.insert(4, crate::labels::CAPACITY_RESERVATION_INTERRUPTIBLE);
    rules.extend(label_domain_rules(
        "spec.template.metadata.labels",
        "x",
        &template_label_keys,
    ));
    rules.push((
        "spec.template.metadata.labels",
        "self.all(x, x != \"karpenter.sh/nodepool\")".into(),
        "label \"karpenter.sh/nodepool\" is restricted",
    ));
    rules.extend(node_class_ref_rules(&[
        "spec.template.spec.nodeClassRef.group",
        "spec.template.spec.nodeClassRef.kind",
        "spec.template.spec.nodeClassRef.name",
    ]));
    rules.extend(requirement_rules(
        "spec.template.spec.requirements",
        "spec.template.spec.requirements[].key",
    ));
    rules.push((
        "spec.template.spec.requirements[].key",
        "self != \"karpenter.sh/nodepool\"".into(),
        "label \"karpenter.sh/nodepool\" is restricted",
    ));
    rules
}

/// The AWS labels a NodeOverlay may select by: the NodeClass label and
/// the `instance-*` ones, in upstream's order (its list for overlays
/// predates the tenancy and reservation labels).
fn overlay_aws_labels() -> Vec<&'static str> {
    std::iter::once(crate::labels::EC2NODECLASS)
        .chain(
            crate::labels::AWS_WELL_KNOWN
                .iter()
                .copied()
                .filter(|k| k.starts_with("karpenter.k8s.aws/instance-")),
        )
        .collect()
}

fn nodeoverlay() -> Vec<Rule> {
    let list = "spec.requirements";
    let mut rules: Vec<Rule> = vec![
        (
            "spec",
            "!has(self.price) || !has(self.priceAdjustment)".into(),
            "cannot set both 'price' and 'priceAdjustment'",
        ),
        (
            "spec.capacity",
            "self.all(x, !(x in ['cpu', 'memory', 'ephemeral-storage', 'pods']))".into(),
            "invalid resource restricted",
        ),
        (
            list,
            "self.all(x, x.operator == 'NotIn' ? x.values.size() != 0 : true)".into(),
            "requirements with operator 'NotIn' must have a value defined",
        ),
        (
            list,
            "self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)".into(),
            "requirements with operator 'In' must have a value defined",
        ),
        (
            list,
            "self.all(x, (x.operator == 'Gt' || x.operator == 'Lt' || x.operator == 'Gte' || x.operator == 'Lte') ? (x.values.size() == 1 && int(x.values[0]) >= 0) : true)".into(),
            "requirements operator 'Gt', 'Lt', 'Gte' or 'Lte' must have a single positive integer value",
        ),
    ];
    rules.extend(label_domain_rules(
        "spec.requirements[].key",
        "self",
        &overlay_aws_labels(),
    ));
    rules
}

fn capacitybuffer() -> Vec<Rule> {
    vec![
        (
            "spec",
            "!has(self.podTemplateRef) || has(self.replicas) || has(self.limits)".into(),
            "If podTemplateRef is set, replicas or limits must also be set",
        ),
        (
            "spec",
            "!(has(self.podTemplateRef) && has(self.scalableRef))".into(),
            "You must define either PodTemplateRef or ScalableRef, but not both",
        ),
    ]
}

fn nodeclaim() -> Vec<Rule> {
    let mut rules: Vec<Rule> = vec![("spec", "self == oldSelf".into(), "spec is immutable")];
    rules.extend(node_class_ref_rules(&[
        "spec.nodeClassRef.group",
        "spec.nodeClassRef.kind",
        "spec.nodeClassRef.name",
    ]));
    rules.extend(requirement_rules(
        "spec.requirements",
        "spec.requirements[].key",
    ));
    rules
}

/// The rule that an alias of `family` goes with `amiFamily` `name` or `Custom`.
fn alias_family_rule(family: &str, name: &'static str, message: &'static str) -> Rule {
    (
        "spec",
        format!(
            "!has(self.amiFamily) || (self.amiSelectorTerms.exists(x, has(x.alias) && x.alias.find('^[^@]+') == '{family}') ? (self.amiFamily == 'Custom' || self.amiFamily == '{name}') : true)"
        ),
        message,
    )
}

/// The rules every selector term's `tags` carries.
fn tag_rule(path: &'static str) -> Rule {
    (
        path,
        "self.all(k, k != '' && self[k] != '')".into(),
        "empty tag keys or values aren't supported",
    )
}

fn ec2nodeclass() -> Vec<Rule> {
    let mut rules: Vec<Rule> = vec![(
        "spec",
        "(has(self.role) && !has(self.instanceProfile)) || (!has(self.role) && has(self.instanceProfile))".into(),
        "must specify exactly one of ['role', 'instanceProfile']",
    )];
    rules.extend([
        alias_family_rule(
            "al2",
            "AL2",
            "if set, amiFamily must be 'AL2' or 'Custom' when using an AL2 alias",
        ),
        alias_family_rule(
            "al2023",
            "AL2023",
            "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias",
        ),
        alias_family_rule(
            "bottlerocket",
            "Bottlerocket",
            "if set, amiFamily must be 'Bottlerocket' or 'Custom' when using a Bottlerocket alias",
        ),
        alias_family_rule(
            "windows2019",
            "Windows2019",
            "if set, amiFamily must be 'Windows2019' or 'Custom' when using a Windows2019 alias",
        ),
        alias_family_rule(
            "windows2022",
            "Windows2022",
            "if set, amiFamily must be 'Windows2022' or 'Custom' when using a Windows2022 alias",
        ),
        alias_family_rule(
            "windows2025",
            "Windows2025",
            "if set, amiFamily must be 'Windows2025' or 'Custom' when using a Windows2025 alias",
        ),
    ]);
    let fixed: [(&'static str, &'static str, &'static str); 40] = [
        (
            "spec",
            "self.amiSelectorTerms.exists(x, has(x.alias)) ? true : has(self.amiFamily)",
            "must specify amiFamily if amiSelectorTerms does not contain an alias",
        ),
        (
            "spec.amiSelectorTerms",
            "self.all(x, has(x.tags) || has(x.id) || has(x.name) || has(x.alias) || has(x.ssmParameter))",
            "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
        ),
        (
            "spec.amiSelectorTerms",
            "!self.exists(x, has(x.id) && (has(x.alias) || has(x.tags) || has(x.name) || has(x.owner)))",
            "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
        ),
        (
            "spec.amiSelectorTerms",
            "!self.exists(x, has(x.alias) && (has(x.id) || has(x.tags) || has(x.name) || has(x.owner)))",
            "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
        ),
        (
            "spec.amiSelectorTerms",
            "!(self.exists(x, has(x.alias)) && self.size() != 1)",
            "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
        ),
        (
            "spec.amiSelectorTerms[].alias",
            "self.matches('^[a-zA-Z0-9]+@.+$')",
            "'alias' is improperly formatted, must match the format 'family@version'",
        ),
        (
            "spec.amiSelectorTerms[].alias",
            "self.split('@')[0] in ['al2','al2023','bottlerocket','windows2019','windows2022','windows2025']",
            "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'",
        ),
        (
            "spec.amiSelectorTerms[].alias",
            "self.split('@')[0] in ['windows2019','windows2022','windows2025'] ? self.split('@')[1] == 'latest' : true",
            "windows families may only specify version 'latest'",
        ),
        (
            "spec.blockDeviceMappings",
            "self.filter(x, has(x.rootVolume)?x.rootVolume==true:false).size() <= 1",
            "must have only one blockDeviceMappings with rootVolume",
        ),
        (
            "spec.blockDeviceMappings[].ebs",
            "has(self.snapshotID) || has(self.volumeSize)",
            "snapshotID or volumeSize must be defined",
        ),
        (
            "spec.blockDeviceMappings[].ebs",
            "!has(self.volumeInitializationRate) || (has(self.snapshotID) && self.snapshotID != '')",
            "snapshotID must be set when volumeInitializationRate is set",
        ),
        (
            "spec.capacityReservationSelectorTerms",
            "self.all(x, has(x.tags) || has(x.id) || has(x.instanceMatchCriteria))",
            "expected at least one, got none, ['tags', 'id', 'instanceMatchCriteria']",
        ),
        (
            "spec.capacityReservationSelectorTerms",
            "!self.all(x, has(x.id) && (has(x.tags) || has(x.ownerID) || has(x.instanceMatchCriteria)))",
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
        ),
        (
            "spec.connectionTracking",
            "has(self.tcpEstablishedTimeout) || has(self.udpStreamTimeout) || has(self.udpTimeout)",
            "at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set",
        ),
        (
            "spec.instanceProfile",
            "self != ''",
            "instanceProfile cannot be empty",
        ),
        (
            "spec.kubelet",
            "has(self.imageGCHighThresholdPercent) && has(self.imageGCLowThresholdPercent) ?  self.imageGCHighThresholdPercent > self.imageGCLowThresholdPercent  : true",
            "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent",
        ),
        (
            "spec.kubelet",
            "has(self.evictionSoft) ? self.evictionSoft.all(e, (e in self.evictionSoftGracePeriod)):true",
            "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod",
        ),
        (
            "spec.kubelet",
            "has(self.evictionSoftGracePeriod) ? self.evictionSoftGracePeriod.all(e, (e in self.evictionSoft)):true",
            "evictionSoftGracePeriod OwnerKey does not have a matching evictionSoft",
        ),
        (
            "spec.kubelet.kubeReserved",
            "self.all(x, x=='cpu' || x=='memory' || x=='ephemeral-storage' || x=='pid')",
            "valid keys for kubeReserved are ['cpu','memory','ephemeral-storage','pid']",
        ),
        (
            "spec.kubelet.kubeReserved",
            "self.all(x, !self[x].startsWith('-'))",
            "kubeReserved value cannot be a negative resource quantity",
        ),
        (
            "spec.kubelet.systemReserved",
            "self.all(x, x=='cpu' || x=='memory' || x=='ephemeral-storage' || x=='pid')",
            "valid keys for systemReserved are ['cpu','memory','ephemeral-storage','pid']",
        ),
        (
            "spec.kubelet.systemReserved",
            "self.all(x, !self[x].startsWith('-'))",
            "systemReserved value cannot be a negative resource quantity",
        ),
        (
            "spec.networkInterfaces",
            "self.size() == 0 || self.exists(x, x.deviceIndex == 0 && x.networkCardIndex == 0 && x.interfaceType == 'interface')",
            "networkInterfaces must include a primary interface with interfaceType='interface'",
        ),
        (
            "spec.networkInterfaces",
            "self.all(x, self.filter(y, x.networkCardIndex == y.networkCardIndex && x.deviceIndex == y.deviceIndex).size() == 1 && (x.interfaceType != 'efa-only' || self.filter(y, x.networkCardIndex == y.networkCardIndex && y.interfaceType == 'efa-only').size() == 1))",
            "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card",
        ),
        (
            "spec.placementGroupSelector",
            "has(self.name) || has(self.id)",
            "expected at least one, got none, ['name', 'id']",
        ),
        (
            "spec.placementGroupSelector",
            "!(has(self.name) && has(self.id))",
            "'name' and 'id' are mutually exclusive",
        ),
        ("spec.role", "self != ''", "role cannot be empty"),
        (
            "spec.securityGroupSelectorTerms",
            "self.size() != 0",
            "securityGroupSelectorTerms cannot be empty",
        ),
        (
            "spec.securityGroupSelectorTerms",
            "self.all(x, has(x.tags) || has(x.id) || has(x.name))",
            "expected at least one, got none, ['tags', 'id', 'name']",
        ),
        (
            "spec.securityGroupSelectorTerms",
            "!self.all(x, has(x.id) && (has(x.tags) || has(x.name)))",
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
        ),
        (
            "spec.securityGroupSelectorTerms",
            "!self.all(x, has(x.name) && (has(x.tags) || has(x.id)))",
            "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
        ),
        (
            "spec.subnetSelectorTerms",
            "self.size() != 0",
            "subnetSelectorTerms cannot be empty",
        ),
        (
            "spec.subnetSelectorTerms",
            "self.all(x, has(x.tags) || has(x.id))",
            "expected at least one, got none, ['tags', 'id']",
        ),
        (
            "spec.subnetSelectorTerms",
            "!self.all(x, has(x.id) && has(x.tags))",
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
        ),
        (
            "spec.tags",
            "self.all(k, k != '')",
            "empty tag keys aren't supported",
        ),
        (
            "spec.tags",
            "self.all(k, k !='eks:eks-cluster-name')",
            "tag contains a restricted tag matching eks:eks-cluster-name",
        ),
        (
            "spec.tags",
            "self.all(k, !k.startsWith('kubernetes.io/cluster') )",
            "tag contains a restricted tag matching kubernetes.io/cluster/",
        ),
        (
            "spec.tags",
            "self.all(k, k != 'karpenter.sh/nodepool')",
            "tag contains a restricted tag matching karpenter.sh/nodepool",
        ),
        (
            "spec.tags",
            "self.all(k, k !='karpenter.sh/nodeclaim')",
            "tag contains a restricted tag matching karpenter.sh/nodeclaim",
        ),
        (
            "spec.tags",
            "self.all(k, k !='karpenter.k8s.aws/ec2nodeclass')",
            "tag contains a restricted tag matching karpenter.k8s.aws/ec2nodeclass",
        ),
    ];
    rules.extend(
        fixed
            .into_iter()
            .map(|(path, rule, message)| (path, rule.to_string(), message)),
    );
    // The eviction maps' keys must be known signals.
    for (path, message) in [
        (
            "spec.kubelet.evictionHard",
            "valid keys for evictionHard are ['memory.available','nodefs.available','nodefs.inodesFree','imagefs.available','imagefs.inodesFree','pid.available']",
        ),
        (
            "spec.kubelet.evictionSoft",
            "valid keys for evictionSoft are ['memory.available','nodefs.available','nodefs.inodesFree','imagefs.available','imagefs.inodesFree','pid.available']",
        ),
        (
            "spec.kubelet.evictionSoftGracePeriod",
            "valid keys for evictionSoftGracePeriod are ['memory.available','nodefs.available','nodefs.inodesFree','imagefs.available','imagefs.inodesFree','pid.available']",
        ),
    ] {
        rules.push((
            path,
            format!("self.all(x, x in {EVICTION_SIGNALS})"),
            message,
        ));
    }
    for path in [
        "spec.amiSelectorTerms[].tags",
        "spec.capacityReservationSelectorTerms[].tags",
        "spec.securityGroupSelectorTerms[].tags",
        "spec.subnetSelectorTerms[].tags",
    ] {
        rules.push(tag_rule(path));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_upstreams_rule_count() {
        assert_eq!(rules("NodePool").len(), 20);
        assert_eq!(rules("NodeClaim").len(), 10);
        assert_eq!(rules("EC2NodeClass").len(), 54);
        assert_eq!(rules("NodeOverlay").len(), 8);
        assert_eq!(rules("CapacityBuffer").len(), 2);
    }
}
