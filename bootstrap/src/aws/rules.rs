//! The five EventBridge rules that feed the interruption queue, as the
//! controller defines them (`karpenter_aws::interruption_rules::event_rules`,
//! next to the parser, so a rule never delivers a kind the controller
//! ignores), each with the queue as its one target.

use super::{Account, Clients, cluster_tags, created_here};
use crate::{Action, Change, Error, Mode};
use aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use karpenter_aws::interruption_rules::{EventRule, event_rules};

/// The target id every rule sends to the queue under.
pub const TARGET_ID: &str = "KarpenterInterruptionQueue";

/// The rule `name`, if it exists.
pub(crate) async fn find(
    c: &Clients,
    resource: &str,
    name: &str,
) -> Result<Option<DescribeRuleOutput>, Error> {
    c.calls.read();
    match c.events.describe_rule().name(name).send().await {
        Ok(found) => Ok(Some(found)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws(
            resource,
            "events:DescribeRule",
            e.into_service_error(),
        )),
    }
}

/// The tags on the rule `arn`, as (key, value).
pub(crate) async fn tags(
    c: &Clients,
    resource: &str,
    arn: &str,
) -> Result<Vec<(String, String)>, Error> {
    c.calls.read();
    let out = c
        .events
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                resource,
                "events:ListTagsForResource",
                e.into_service_error(),
            )
        })?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// Plans or converges every rule; returns what each needed.
pub async fn reconcile(account: &Account, c: &Clients, mode: Mode) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    for rule in event_rules() {
        out.push(reconcile_rule(account, c, mode, &rule).await?);
    }
    Ok(out)
}

async fn reconcile_rule(
    account: &Account,
    c: &Clients,
    mode: Mode,
    rule: &EventRule,
) -> Result<Change, Error> {
    let name = rule.name(&account.cluster);
    let resource = format!("eventbridge-rule {name}");
    let queue = super::queue::arn(account);
    let err = |call: &'static str, e: aws_sdk_eventbridge::Error| Error::aws(&resource, call, e);
    let found = find(c, &resource, &name).await?;
    let mut fields = Vec::new();
    let rule_arn = match &found {
        None => None,
        Some(found) => {
            let pattern = found
                .event_pattern()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
            if pattern.as_ref() != Some(&rule.pattern) {
                fields.push("event pattern".to_string());
            }
            if found.description() != Some(rule.description) {
                fields.push("description".to_string());
            }
            if found.state() != Some(&RuleState::Enabled) {
                fields.push("state".to_string());
            }
            found.arn().map(str::to_string)
        }
    };
    let target_ok = if found.is_some() {
        c.calls.read();
        let targets = c
            .events
            .list_targets_by_rule()
            .rule(&name)
            .send()
            .await
            .map_err(|e| err("events:ListTargetsByRule", e.into()))?;
        targets
            .targets()
            .iter()
            .any(|t| t.id() == TARGET_ID && t.arn() == queue)
    } else {
        false
    };
    if found.is_some() && !target_ok {
        fields.push("target".to_string());
    }
    let tags_ok = match &rule_arn {
        Some(arn) => {
            let tags = tags(c, &resource, arn).await?;
            // A rule by this name the bootstrap did not make (upstream's
            // names are the same) is used as it is, never adopted.
            if !created_here(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                return Ok(Change {
                    resource,
                    action: Action::Foreign,
                });
            }
            cluster_tags(&account.cluster)
                .iter()
                .all(|wanted| tags.contains(wanted))
        }
        None => false,
    };
    if found.is_some() && !tags_ok {
        fields.push("tags".to_string());
    }
    let action = match (&found, fields.is_empty()) {
        (None, _) => Action::Create,
        (Some(_), true) => Action::Unchanged,
        (Some(_), false) => Action::Update(fields.clone()),
    };
    if mode == Mode::Apply && action != Action::Unchanged {
        let tags: Vec<Tag> = cluster_tags(&account.cluster)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
            .collect();
        let rule_changed = found.is_none()
            || fields
                .iter()
                .any(|f| f == "event pattern" || f == "description" || f == "state");
        let mut arn = rule_arn;
        if rule_changed {
            c.calls.write();
            let put = c
                .events
                .put_rule()
                .name(&name)
                .description(rule.description)
                .event_pattern(rule.pattern.to_string())
                .state(RuleState::Enabled)
                .set_tags(found.is_none().then(|| tags.clone()))
                .send()
                .await
                .map_err(|e| err("events:PutRule", e.into()))?;
            arn = put.rule_arn().map(str::to_string).or(arn);
        }
        if !target_ok {
            c.calls.write();
            let target = Target::builder()
                .id(TARGET_ID)
                .arn(&queue)
                .build()
                .expect("target has id and arn");
            c.events
                .put_targets()
                .rule(&name)
                .targets(target)
                .send()
                .await
                .map_err(|e| err("events:PutTargets", e.into()))?;
        }
        if found.is_some()
            && !tags_ok
            && let Some(arn) = arn
        {
            c.calls.write();
            c.events
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| err("events:TagResource", e.into()))?;
        }
    }
    Ok(Change { resource, action })
}
