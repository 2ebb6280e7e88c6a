//! EC2NodeClass resolution: selector terms to concrete subnets, security
//! groups, AMIs and an instance profile, reported as `status` with the
//! conditions `SubnetsReady`, `SecurityGroupsReady`, `AMIsReady`,
//! `InstanceProfileReady` and `Ready`.

use super::ami::{AmiFamily, Variant, alias_parameters, image_requirements};
use super::sdk::cloud_error;
use super::{AwsCloudProvider, instance_profile};
use crate::catalog::generate::kubernetes_architecture;
use crate::cloud::CloudError;
use aws_sdk_ec2::types::Filter;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use karpenter_api::v1::ec2nodeclass_conditions as cond;
use karpenter_api::v1::{
    AmiStatus, EC2NodeClass, EC2NodeClassStatus, SecurityGroupStatus, SubnetStatus,
};
use std::collections::{BTreeMap, HashMap};

/// EC2 filters for a tag map: `key: "*"` matches any value of the key.
fn tag_filters(tags: Option<&BTreeMap<String, String>>) -> Vec<Filter> {
    tags.into_iter()
        .flatten()
        .map(|(k, v)| {
            if v == "*" {
                Filter::builder().name("tag-key").values(k).build()
            } else {
                Filter::builder().name(format!("tag:{k}")).values(v).build()
            }
        })
        .collect()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The best image so far per (architecture, variant), ranked by (not
/// deprecated, creation date).
type BestImages = BTreeMap<(String, Option<Variant>), ((bool, String), AmiStatus)>;

/// The outcome of one part of the resolution: its condition's reason and message on failure.
type Part<T> = Result<T, (String, String)>;

fn failed<T>(reason: &str, message: impl Into<String>) -> Part<T> {
    Err((reason.to_string(), message.into()))
}

/// Fields of upstream's EC2NodeClass this project accepts (the CRD is
/// upstream's) but cannot act on yet: a class using one is not Ready, with
/// the field named, rather than launching nodes that silently lack it.
pub const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    (
        "spec.placementGroupSelector",
        "launching into placement groups is not supported yet",
    ),
    (
        "spec.cpuOptions.nestedVirtualization",
        "the EC2 API version this project is built with has no nested-virtualization CPU option",
    ),
];

/// `ValidationSucceeded` fails when the class uses an [`UNSUPPORTED_FIELDS`] field.
fn unsupported_fields(class: &EC2NodeClass) -> Result<(), (String, String)> {
    let used = |path: &str| match path {
        "spec.placementGroupSelector" => class.spec.placement_group_selector.is_some(),
        _ => class
            .spec
            .cpu_options
            .as_ref()
            .is_some_and(|c| c.nested_virtualization.is_some()),
    };
    match UNSUPPORTED_FIELDS.iter().find(|(path, _)| used(path)) {
        Some((path, why)) => Err(("UnsupportedField".into(), format!("{path}: {why}"))),
        None => Ok(()),
    }
}

fn api_failure(reason: &str, err: CloudError) -> (String, String) {
    (reason.to_string(), err.to_string())
}

impl AwsCloudProvider {
    /// Resolves every selector of `class` and returns its new status. Parts
    /// that fail keep their previous value and say why in their condition;
    /// `Ready` is true only when all four parts are and the user data can be
    /// generated (`ValidationSucceeded`).
    pub async fn resolve(&self, class: &EC2NodeClass) -> EC2NodeClassStatus {
        let previous = class.status.clone().unwrap_or_default();
        let subnets = self.resolve_subnets(class).await;
        let groups = self.resolve_security_groups(class).await;
        let amis = self.resolve_amis(class).await;
        let profile = instance_profile::ensure(
            &self.clients.iam,
            &self.settings.cluster.name,
            &self.settings.region,
            class,
        )
        .await
        .map_err(|e| api_failure("InstanceProfileFailed", e));
        let generation = class.metadata.generation;
        let mut conditions = Vec::new();
        let mut push = |type_: &str, part: Result<(), (String, String)>| {
            conditions.push(condition(&previous, generation, type_, part));
        };
        push(
            cond::SUBNETS_READY,
            subnets.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        push(
            cond::SECURITY_GROUPS_READY,
            groups.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        push(
            cond::AMIS_READY,
            amis.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        push(
            cond::INSTANCE_PROFILE_READY,
            profile.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        push(
            cond::VALIDATION_SUCCEEDED,
            crate::userdata::validate_class(class, &self.settings.cluster)
                .and_then(|()| unsupported_fields(class)),
        );
        let not_ready: Vec<String> = conditions
            .iter()
            .filter(|c| c.status != "True")
            .map(|c| format!("{}: {}", c.type_, c.message))
            .collect();
        let ready = if not_ready.is_empty() {
            Ok(())
        } else {
            Err(("NotReady".to_string(), not_ready.join("; ")))
        };
        conditions.push(condition(&previous, generation, cond::READY, ready));
        EC2NodeClassStatus {
            subnets: subnets.ok().or(previous.subnets),
            security_groups: groups.ok().or(previous.security_groups),
            amis: amis.ok().or(previous.amis),
            instance_profile: profile.ok().or(previous.instance_profile),
            capacity_reservations: previous.capacity_reservations,
            conditions: Some(conditions),
        }
    }

    async fn resolve_subnets(&self, class: &EC2NodeClass) -> Part<Vec<SubnetStatus>> {
        let mut found: HashMap<String, (SubnetStatus, i32)> = HashMap::new();
        for term in &class.spec.subnet_selector_terms {
            let mut filters = tag_filters(term.tags.as_ref());
            if let Some(id) = &term.id {
                filters.push(filter("subnet-id", id));
            }
            let mut pages = self
                .clients
                .ec2
                .describe_subnets()
                .set_filters(Some(filters))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    api_failure("SubnetsNotFound", cloud_error("DescribeSubnets", e))
                })?;
                for s in page.subnets.unwrap_or_default() {
                    let (Some(id), Some(zone)) = (s.subnet_id, s.availability_zone) else {
                        continue;
                    };
                    let status = SubnetStatus {
                        id: id.clone(),
                        zone,
                        zone_id: s.availability_zone_id,
                    };
                    found.insert(id, (status, s.available_ip_address_count.unwrap_or(0)));
                }
            }
        }
        if found.is_empty() {
            return failed(
                "SubnetsNotFound",
                "no subnet matches spec.subnetSelectorTerms",
            );
        }
        // Roomiest first (launches prefer them), then by id for a stable status.
        let mut subnets: Vec<(SubnetStatus, i32)> = found.into_values().collect();
        subnets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
        Ok(subnets.into_iter().map(|(s, _)| s).collect())
    }

    async fn resolve_security_groups(
        &self,
        class: &EC2NodeClass,
    ) -> Part<Vec<SecurityGroupStatus>> {
        let mut found: BTreeMap<String, SecurityGroupStatus> = BTreeMap::new();
        for term in &class.spec.security_group_selector_terms {
            let mut filters = tag_filters(term.tags.as_ref());
            if let Some(id) = &term.id {
                filters.push(filter("group-id", id));
            }
            if let Some(name) = &term.name {
                filters.push(filter("group-name", name));
            }
            let mut pages = self
                .clients
                .ec2
                .describe_security_groups()
                .set_filters(Some(filters))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    api_failure(
                        "SecurityGroupsNotFound",
                        cloud_error("DescribeSecurityGroups", e),
                    )
                })?;
                for g in page.security_groups.unwrap_or_default() {
                    let Some(id) = g.group_id else { continue };
                    found.insert(
                        id.clone(),
                        SecurityGroupStatus {
                            id,
                            name: g.group_name,
                        },
                    );
                }
            }
        }
        if found.is_empty() {
            return failed(
                "SecurityGroupsNotFound",
                "no security group matches spec.securityGroupSelectorTerms",
            );
        }
        Ok(found.into_values().collect())
    }

    /// Images the terms select, newest first per (architecture, variant).
    async fn resolve_amis(&self, class: &EC2NodeClass) -> Part<Vec<AmiStatus>> {
        // Candidate image ids with the variant an alias parameter promised.
        let mut wanted: Vec<(String, Option<Variant>)> = Vec::new();
        let mut filtered: Vec<(Vec<Filter>, Vec<String>)> = Vec::new();
        for term in &class.spec.ami_selector_terms {
            if let Some(alias) = &term.alias {
                let params = alias_parameters(
                    alias,
                    &self.settings.kubernetes_version,
                    &self.settings.ssm_prefix,
                )
                .map_err(|e| api_failure("AMINotFound", e))?;
                for p in params {
                    // Families publish only some variants; a missing parameter is not an error.
                    if let Some(id) = self.ssm_image_id(&p.name).await? {
                        wanted.push((id, Some(p.variant)));
                    }
                }
                continue;
            }
            if let Some(name) = &term.ssm_parameter {
                match self.ssm_image_id(name).await? {
                    Some(id) => wanted.push((id, None)),
                    None => {
                        return failed(
                            "AMINotFound",
                            format!("SSM parameter {name} does not exist"),
                        );
                    }
                }
                continue;
            }
            let mut filters = tag_filters(term.tags.as_ref());
            if let Some(id) = &term.id {
                filters.push(filter("image-id", id));
            }
            if let Some(name) = &term.name {
                filters.push(filter("name", name));
            }
            let owners = match (&term.owner, &term.name) {
                (Some(owner), _) => vec![owner.clone()],
                // A bare name could be anyone's: only trust our account's and Amazon's.
                (None, Some(_)) => vec!["self".to_string(), "amazon".to_string()],
                (None, None) => Vec::new(),
            };
            filtered.push((filters, owners));
        }
        let mut images = Vec::new();
        if !wanted.is_empty() {
            let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
            let found = self.describe_images(Vec::new(), Vec::new(), ids).await?;
            for image in found {
                let variant = wanted
                    .iter()
                    .find(|(id, _)| image.image_id.as_deref() == Some(id))
                    .and_then(|w| w.1);
                images.push((image, variant));
            }
        }
        for (filters, owners) in filtered {
            for image in self.describe_images(filters, owners, Vec::new()).await? {
                images.push((image, None));
            }
        }
        // Per (architecture, variant): the newest image, preferring ones not deprecated.
        let mut newest: BestImages = BTreeMap::new();
        let now = k8s_openapi::jiff::Timestamp::now();
        for (image, variant) in images {
            let (Some(id), Some(arch)) = (
                image.image_id.clone(),
                image
                    .architecture
                    .as_ref()
                    .and_then(|a| kubernetes_architecture(&[a.as_str()])),
            ) else {
                continue;
            };
            let deprecated = image
                .deprecation_time
                .as_deref()
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .is_some_and(|t| t <= now);
            let rank = (!deprecated, image.creation_date.clone().unwrap_or_default());
            let status = AmiStatus {
                id,
                name: image.name.clone(),
                requirements: image_requirements(arch, variant),
                deprecated: deprecated.then_some(true),
            };
            let key = (arch.to_string(), variant);
            if newest.get(&key).is_none_or(|(best, _)| rank > *best) {
                newest.insert(key, (rank, status));
            }
        }
        if newest.is_empty() {
            return failed("AMINotFound", "no AMI matches spec.amiSelectorTerms");
        }
        if AmiFamily::of(class) == AmiFamily::Custom && class.spec.user_data.is_none() {
            tracing::warn!(nodeclass = ?class.metadata.name, "custom AMIs get no bootstrap user data: set spec.userData");
        }
        Ok(newest.into_values().map(|(_, s)| s).collect())
    }

    async fn ssm_image_id(&self, name: &str) -> Part<Option<String>> {
        match self.clients.ssm.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e) if super::sdk::error_code(&e) == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(api_failure("AMINotFound", cloud_error("GetParameter", e))),
        }
    }

    async fn describe_images(
        &self,
        filters: Vec<Filter>,
        owners: Vec<String>,
        ids: Vec<String>,
    ) -> Part<Vec<aws_sdk_ec2::types::Image>> {
        let mut out = Vec::new();
        let mut pages = self
            .clients
            .ec2
            .describe_images()
            .set_filters((!filters.is_empty()).then_some(filters))
            .set_owners((!owners.is_empty()).then_some(owners))
            .set_image_ids((!ids.is_empty()).then_some(ids))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| api_failure("AMINotFound", cloud_error("DescribeImages", e)))?;
            out.extend(page.images.unwrap_or_default());
        }
        Ok(out)
    }
}

/// A condition for one part, keeping the previous transition time when the
/// status did not change.
fn condition(
    previous: &EC2NodeClassStatus,
    generation: Option<i64>,
    type_: &str,
    part: Result<(), (String, String)>,
) -> Condition {
    let (status, reason, message) = match part {
        Ok(()) => ("True", type_.to_string(), String::new()),
        Err((reason, message)) => ("False", reason, message),
    };
    let old = karpenter_api::v1::find_condition(previous.conditions.as_deref(), type_);
    let last_transition_time = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason,
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use karpenter_api::v1::{CpuOptions, PlacementGroupSelector};

    #[test]
    fn a_field_this_project_cannot_act_on_fails_validation_by_name() {
        let mut class: EC2NodeClass = serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
            "metadata": {"name": "default"},
            "spec": {"role": "Node", "amiSelectorTerms": [{"alias": "al2023@latest"}],
                     "subnetSelectorTerms": [{"tags": {"a": "b"}}],
                     "securityGroupSelectorTerms": [{"tags": {"a": "b"}}]}
        }))
        .unwrap();
        assert_eq!(unsupported_fields(&class), Ok(()));
        class.spec.placement_group_selector = Some(PlacementGroupSelector {
            name: Some("training".into()),
            id: None,
        });
        let (reason, message) = unsupported_fields(&class).unwrap_err();
        assert_eq!(reason, "UnsupportedField");
        assert!(
            message.starts_with("spec.placementGroupSelector: "),
            "{message}"
        );
        class.spec.placement_group_selector = None;
        class.spec.cpu_options = Some(CpuOptions {
            nested_virtualization: Some("enabled".into()),
        });
        let (_, message) = unsupported_fields(&class).unwrap_err();
        assert!(
            message.starts_with("spec.cpuOptions.nestedVirtualization: "),
            "{message}"
        );
    }
}
