//! The EventBridge messages the interruption queue carries, parsed: the four
//! `aws.ec2` kinds (spot interruption warning, rebalance recommendation,
//! instance state change, capacity-reservation interruption warning) and
//! AWS Health scheduled changes for EC2.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// What happened to the instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// "EC2 Spot Instance Interruption Warning": two minutes' notice.
    SpotInterruption,
    /// "EC2 Instance Rebalance Recommendation": elevated interruption risk.
    RebalanceRecommendation,
    /// "EC2 Instance State-change Notification" with the new state.
    StateChange(String),
    /// "AWS Health Event", category `scheduledChange`, service EC2.
    ScheduledChange,
    /// "EC2 Capacity Reservation Instance Interruption Warning".
    CapacityReservationInterruption,
}

impl Kind {
    /// The `message_type` label of `karpenter_interruption_received_messages_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Kind::SpotInterruption => "spot_interrupted",
            Kind::RebalanceRecommendation => "rebalance_recommendation",
            Kind::StateChange(_) => "instance_state_change",
            Kind::ScheduledChange => "scheduled_change",
            Kind::CapacityReservationInterruption => "capacity_reservation_interrupted",
        }
    }

    /// Whether the instance is going away (the node must be drained).
    pub fn is_disruptive(&self) -> bool {
        match self {
            Kind::StateChange(state) => {
                matches!(
                    state.as_str(),
                    "stopping" | "stopped" | "shutting-down" | "terminated"
                )
            }
            Kind::RebalanceRecommendation => false,
            _ => true,
        }
    }
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event's id.
    pub id: String,
    /// What happened.
    pub kind: Kind,
    /// The instances it concerns.
    pub instance_ids: Vec<String>,
    /// When AWS emitted the event, if it said.
    pub time: Option<Timestamp>,
}

fn text<'a>(value: &'a Value, field: &str) -> Result<&'a str, String> {
    value[field]
        .as_str()
        .ok_or_else(|| format!("field {field:?} is missing or not a string"))
}

/// A message body that is not one of the events the queue's rules deliver.
/// Never retryable: the message is deleted and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedMessage(pub String);

/// Parses an SQS message body; the error says which field broke which rule.
pub fn parse(body: &str) -> Result<Message, MalformedMessage> {
    parse_fields(body).map_err(MalformedMessage)
}

fn parse_fields(body: &str) -> Result<Message, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let source = text(&value, "source")?;
    let detail_type = text(&value, "detail-type")?;
    let detail = &value["detail"];
    if !detail.is_object() {
        return Err("field \"detail\" is missing or not an object".into());
    }
    let instance = || text(detail, "instance-id").map(|id| vec![id.to_string()]);
    let (kind, instance_ids) = match (source, detail_type) {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => {
            (Kind::SpotInterruption, instance()?)
        }
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => {
            (Kind::RebalanceRecommendation, instance()?)
        }
        ("aws.ec2", "EC2 Instance State-change Notification") => (
            Kind::StateChange(text(detail, "state")?.to_string()),
            instance()?,
        ),
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning") => {
            (Kind::CapacityReservationInterruption, instance()?)
        }
        ("aws.health", "AWS Health Event") => {
            if text(detail, "service")? != "EC2"
                || text(detail, "eventTypeCategory")? != "scheduledChange"
            {
                return Err(format!(
                    "AWS Health event for {}/{} is not an EC2 scheduled change",
                    detail["service"], detail["eventTypeCategory"]
                ));
            }
            let ids: Vec<String> = detail["affectedEntities"]
                .as_array()
                .ok_or("field \"detail.affectedEntities\" is missing or not a list")?
                .iter()
                .filter_map(|e| e["entityValue"].as_str())
                .filter(|id| id.starts_with("i-"))
                .map(str::to_string)
                .collect();
            (Kind::ScheduledChange, ids)
        }
        (source, detail_type) => {
            return Err(format!("unsupported event {source:?} / {detail_type:?}"));
        }
    };
    if let Some(bad) = instance_ids.iter().find(|id| !id.starts_with("i-")) {
        return Err(format!("{bad:?} is not an EC2 instance id"));
    }
    Ok(Message {
        id: value["id"].as_str().unwrap_or_default().to_string(),
        kind,
        instance_ids,
        time: value["time"].as_str().and_then(|t| t.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str, detail: Value) -> String {
        json!({"version": "0", "id": "e-1", "source": source, "detail-type": detail_type,
               "time": "2026-11-23T10:00:00Z", "detail": detail})
        .to_string()
    }

    #[test]
    fn parses_the_five_kinds() {
        let spot = parse(&event(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": "i-0abc", "instance-action": "terminate"}),
        ))
        .unwrap();
        assert_eq!(
            (spot.kind, spot.instance_ids),
            (Kind::SpotInterruption, vec!["i-0abc".to_string()])
        );
        assert!(spot.time.is_some());
        let state = parse(&event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-1", "state": "stopping"}),
        ))
        .unwrap();
        assert!(state.kind.is_disruptive());
        let running = parse(&event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-1", "state": "running"}),
        ))
        .unwrap();
        assert!(!running.kind.is_disruptive());
        let rebalance = parse(&event(
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            json!({"instance-id": "i-2"}),
        ))
        .unwrap();
        assert!(!rebalance.kind.is_disruptive());
        let reserved = parse(&event(
            "aws.ec2",
            "EC2 Capacity Reservation Instance Interruption Warning",
            json!({"instance-id": "i-3"}),
        ))
        .unwrap();
        assert_eq!(reserved.kind, Kind::CapacityReservationInterruption);
        let health = parse(&event("aws.health", "AWS Health Event", json!({"service": "EC2",
            "eventTypeCategory": "scheduledChange", "affectedEntities": [{"entityValue": "i-4"}, {"entityValue": "vol-1"}]}))).unwrap();
        assert_eq!(
            (health.kind, health.instance_ids),
            (Kind::ScheduledChange, vec!["i-4".to_string()])
        );
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        assert!(parse("{").unwrap_err().0.contains("not JSON"));
        let err = parse(&event(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            json!({}),
        ))
        .unwrap_err();
        assert!(err.0.contains("instance-id"), "{err}");
        let err = parse(&event("aws.s3", "Object Created", json!({}))).unwrap_err();
        assert!(err.0.contains("unsupported"), "{err}");
        let err = parse(&event(
            "aws.health",
            "AWS Health Event",
            json!({"service": "RDS", "eventTypeCategory": "scheduledChange"}),
        ))
        .unwrap_err();
        assert!(err.0.contains("not an EC2 scheduled change"), "{err}");
        let err = parse(&event(
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            json!({"instance-id": "sir-1"}),
        ))
        .unwrap_err();
        assert!(err.0.contains("not an EC2 instance id"), "{err}");
    }
}
