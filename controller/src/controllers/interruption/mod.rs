//! Interruption handling: messages from the interruption queue are parsed,
//! mapped from instance id to NodeClaim, and acted on. A spot interruption
//! marks the offering unavailable, then the claim is deleted (termination
//! cordons, drains and terminates; the evicted pods go pending and
//! provisioning replaces the capacity at once). Scheduled changes, stopping
//! or terminated instances and capacity-reservation interruptions are
//! drained the same way. A rebalance recommendation is an event, or, with
//! `INTERRUPTION_REPLACE_ON_REBALANCE`, the same proactive replacement.
//! A message that does not parse is logged, counted and deleted; one bad
//! message never stops the loop.

pub mod messages;
pub mod queue;

pub use karpenter_aws::interruption_rules::{EventRule, event_rules};
pub use messages::{Kind, MalformedMessage, Message, parse};
pub use queue::{InMemoryQueue, MessageQueue, QueueError, Received, SqsQueue};

use crate::catalog::CapacityType;
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::writes::delete_claim;
use karpenter_api::labels;
use std::sync::Arc;
use std::time::Duration;

/// What was done about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The NodeClaims named were deleted (cordon, drain, terminate).
    Drained(Vec<String>),
    /// Only an event was recorded.
    Noted,
    /// No NodeClaim owns the instances.
    Unknown,
    /// The message could not be read (the reason).
    Unparseable(String),
    /// Deleting a NodeClaim failed: the message is kept, so the queue
    /// delivers it again (the names that failed).
    Failed(Vec<String>),
}

/// The interruption controller.
pub struct Interruption<C, Q> {
    ctx: Arc<Context<C>>,
    queue: Arc<Q>,
}

impl<C: CloudProvider + 'static, Q: MessageQueue + 'static> Interruption<C, Q> {
    /// A controller reading `queue`.
    pub fn new(ctx: Arc<Context<C>>, queue: Arc<Q>) -> Self {
        Interruption { ctx, queue }
    }

    /// Receives and handles messages until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            let received = match self.queue.receive().await {
                Ok(received) => received,
                Err(e) => {
                    tracing::error!(error = %e, retryable = e.is_retryable(), "receiving interruption messages failed; retrying in 5s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            let handled = received.iter().map(|m| self.handle_received(m));
            futures::future::join_all(handled).await;
        }
    }

    async fn handle_received(&self, message: &Received) {
        let runtime = &self.ctx.metrics.runtime;
        let handled = async { Ok::<_, std::convert::Infallible>(self.handle(&message.body).await) };
        let Ok(action) = runtime.reconcile("interruption", handled).await;
        if let Some(sent) = message.sent {
            let waited = k8s_openapi::jiff::Timestamp::now().duration_since(sent);
            if let Ok(waited) = Duration::try_from(waited) {
                self.ctx
                    .metrics
                    .disruption
                    .interruption_queue_duration
                    .get_or_create(&Vec::new())
                    .observe(waited.as_secs_f64());
            }
        }
        match &action {
            Action::Unparseable(why) => {
                tracing::warn!(reason = %why, "interruption message not understood; deleting it");
            }
            Action::Failed(names) => {
                tracing::warn!(nodeclaims = ?names, "interruption not acted on; the message stays for redelivery");
                return;
            }
            _ => {}
        }
        match self.queue.delete(&message.receipt).await {
            Ok(()) => {
                self.ctx
                    .metrics
                    .disruption
                    .interruption_deleted
                    .get_or_create(&Vec::new())
                    .inc();
            }
            Err(e) => tracing::warn!(error = %e, "deleting interruption message failed"),
        }
    }

    /// Handles one message body.
    pub async fn handle(&self, body: &str) -> Action {
        let metrics = &self.ctx.metrics;
        let message = match parse(body) {
            Ok(message) => message,
            Err(why) => {
                metrics
                    .disruption
                    .interruption_received
                    .get_or_create(&vec![("message_type", "unparseable".into())])
                    .inc();
                return Action::Unparseable(why.0);
            }
        };
        metrics
            .disruption
            .interruption_received
            .get_or_create(&vec![("message_type", message.kind.metric_label().into())])
            .inc();
        self.act(&message).await
    }

    async fn act(&self, message: &Message) -> Action {
        let ctx = &self.ctx;
        let claims: Vec<_> = message
            .instance_ids
            .iter()
            .filter_map(|id| {
                let suffix = format!("/{id}");
                ctx.state.claims.find(|c| {
                    c.status
                        .as_ref()
                        .and_then(|s| s.provider_id.as_deref())
                        .is_some_and(|p| p.ends_with(&suffix))
                })
            })
            .collect();
        if claims.is_empty() {
            return Action::Unknown;
        }
        let replace = message.kind.is_disruptive()
            || (message.kind == Kind::RebalanceRecommendation && ctx.settings.replace_on_rebalance);
        let mut drained = Vec::new();
        let mut failed = Vec::new();
        for claim in claims {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let note = format!("{:?} for {}", message.kind, message.instance_ids.join(", "));
            ctx.event(claim.as_ref(), true, reason(&message.kind), note);
            if !replace {
                continue;
            }
            if message.kind == Kind::SpotInterruption {
                let label = |key: &str| crate::state::label(claim.as_ref(), key);
                ctx.cloud.mark_unavailable(
                    &label(labels::INSTANCE_TYPE),
                    &label(labels::ZONE),
                    CapacityType::Spot,
                );
            }
            match delete_claim(ctx, &claim, "interruption").await {
                Ok(()) => {
                    let label = |key: &str| crate::state::label(claim.as_ref(), key);
                    ctx.metrics
                        .lifecycle
                        .nodeclaims_disrupted
                        .get_or_create(&vec![
                            ("reason", message.kind.metric_label().to_string()),
                            ("nodepool", label(labels::NODEPOOL)),
                            ("capacity_type", label(labels::CAPACITY_TYPE)),
                        ])
                        .inc();
                    tracing::info!(nodeclaim = %name, kind = ?message.kind, "interrupted; draining");
                    drained.push(name);
                }
                Err(e) => {
                    tracing::error!(nodeclaim = %name, error = %e, "deleting interrupted NodeClaim failed");
                    failed.push(name);
                }
            }
        }
        if !failed.is_empty() {
            Action::Failed(failed)
        } else if drained.is_empty() {
            Action::Noted
        } else {
            Action::Drained(drained)
        }
    }
}

fn reason(kind: &Kind) -> &'static str {
    match kind {
        Kind::SpotInterruption => "SpotInterrupted",
        Kind::RebalanceRecommendation => "SpotRebalanceRecommendation",
        Kind::StateChange(_) => "InstanceStateChange",
        Kind::ScheduledChange => "InstanceScheduledChange",
        Kind::CapacityReservationInterruption => "CapacityReservationInterrupted",
    }
}

#[cfg(test)]
mod rule_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_rule_delivers_a_kind_the_parser_reads() {
        for rule in event_rules() {
            let detail = if rule.pattern["source"][0] == "aws.health" {
                json!({"service": "EC2", "eventTypeCategory": "scheduledChange",
                       "affectedEntities": [{"entityValue": "i-0abc"}]})
            } else {
                json!({"instance-id": "i-0abc", "state": "stopping"})
            };
            let event = json!({"id": "1", "source": rule.pattern["source"][0],
                "detail-type": rule.pattern["detail-type"][0], "detail": detail});
            let message =
                parse(&event.to_string()).unwrap_or_else(|e| panic!("rule {}: {e}", rule.suffix));
            assert_eq!(message.instance_ids, ["i-0abc"], "rule {}", rule.suffix);
        }
    }
}
