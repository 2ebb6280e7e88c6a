//! Where interruption messages come from: SQS through the AWS SDK (long
//! poll, 10 messages, 20 s), or an in-memory queue for the offline demo and
//! fast tests (no SQS exists offline; the simulated EC2's messages go there).

use crate::cloud::CloudError;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use k8s_openapi::jiff::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// What deletes it (SQS receipt handle).
    pub receipt: String,
    /// The body (an EventBridge event as JSON).
    pub body: String,
    /// When the queue got it.
    pub sent: Option<Timestamp>,
}

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The AWS call failed; its code and message, and whether the
    /// credentials may not make it ([`CloudError::Unauthorized`]: retrying
    /// does not help until the policy changes) or it may pass on a retry.
    #[error(transparent)]
    Aws(#[from] CloudError),
    /// The queue named in `INTERRUPTION_QUEUE` has no URL (it does not exist
    /// in this account and region).
    #[error("GetQueueUrl: no URL for queue {0:?}")]
    NotFound(String),
}

impl QueueError {
    /// Whether the same call may succeed later without a change by anyone
    /// (a throttle, a timeout, a 5xx), as opposed to a missing queue or
    /// permission.
    pub fn is_retryable(&self) -> bool {
        matches!(self, QueueError::Aws(CloudError::Api { .. }))
    }
}

/// A source of interruption messages.
pub trait MessageQueue: Send + Sync {
    /// Waits for up to 10 messages (returns empty after the long-poll wait).
    fn receive(&self) -> impl Future<Output = Result<Vec<Received>, QueueError>> + Send;
    /// Deletes a handled (or unreadable) message.
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The SQS interruption queue.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// AWS's code and message for a failed SQS call (the operation named).
fn describe<E, R>(operation: &'static str, err: aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    QueueError::Aws(crate::cloud::aws::sdk::cloud_error(operation, err))
}

impl SqsQueue {
    /// Looks the queue up by name (`INTERRUPTION_QUEUE`).
    pub async fn connect(config: &aws_config::SdkConfig, name: &str) -> Result<Self, QueueError> {
        let client = aws_sdk_sqs::Client::new(config);
        let url = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| describe("GetQueueUrl", e))?
            .queue_url
            .ok_or_else(|| QueueError::NotFound(name.to_string()))?;
        Ok(SqsQueue { client, url })
    }
}

impl MessageQueue for SqsQueue {
    async fn receive(&self) -> Result<Vec<Received>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(20)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| describe("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                sent: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("DeleteMessage", e))
    }
}

/// An in-memory queue (a stand-in for SQS where none exists: the offline
/// demo and fast tests). Like SQS, a received message is hidden for the
/// visibility timeout and comes back unless it is deleted: a message whose
/// handling failed is delivered again.
pub struct InMemoryQueue {
    state: Mutex<QueueState>,
    arrived: Notify,
    visibility: Duration,
}

#[derive(Default)]
struct QueueState {
    visible: VecDeque<Received>,
    /// Receipt -> (message, visible again at).
    in_flight: HashMap<String, (Received, Instant)>,
    next: u64,
    deliveries: u64,
}

impl Default for InMemoryQueue {
    fn default() -> Self {
        InMemoryQueue::with_visibility(Duration::from_secs(30))
    }
}

impl InMemoryQueue {
    /// A queue whose received messages come back after `visibility` unless deleted.
    pub fn with_visibility(visibility: Duration) -> Self {
        InMemoryQueue {
            state: Mutex::new(QueueState::default()),
            arrived: Notify::new(),
            visibility,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enqueues a message body.
    pub fn send(&self, body: String) {
        let mut state = self.lock();
        state.next += 1;
        let receipt = format!("m-{}", state.next);
        state.visible.push_back(Received {
            receipt,
            body,
            sent: Some(Timestamp::now()),
        });
        drop(state);
        self.arrived.notify_one();
    }

    /// Messages not deleted yet (visible or in flight).
    pub fn outstanding(&self) -> usize {
        let state = self.lock();
        state.visible.len() + state.in_flight.len()
    }

    /// How many times messages were delivered (redeliveries included).
    pub fn deliveries(&self) -> u64 {
        self.lock().deliveries
    }
}

impl MessageQueue for InMemoryQueue {
    async fn receive(&self) -> Result<Vec<Received>, QueueError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.arrived.notified();
            let next_return = {
                let mut state = self.lock();
                let now = Instant::now();
                let expired: Vec<String> = state
                    .in_flight
                    .iter()
                    .filter(|(_, (_, at))| *at <= now)
                    .map(|(r, _)| r.clone())
                    .collect();
                for receipt in expired {
                    if let Some((message, _)) = state.in_flight.remove(&receipt) {
                        state.visible.push_back(message);
                    }
                }
                if !state.visible.is_empty() {
                    let n = state.visible.len().min(10);
                    let batch: Vec<Received> = state.visible.drain(..n).collect();
                    for message in &batch {
                        let until = now + self.visibility;
                        state
                            .in_flight
                            .insert(message.receipt.clone(), (message.clone(), until));
                    }
                    state.deliveries += batch.len() as u64;
                    return Ok(batch);
                }
                state.in_flight.values().map(|(_, at)| *at).min()
            };
            let wake = next_return.map_or(deadline, |at| at.min(deadline));
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.lock().in_flight.remove(receipt);
        Ok(())
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn a_denied_call_or_a_missing_queue_is_not_retryable_a_throttle_is() {
        let throttled = QueueError::Aws(CloudError::Api {
            operation: "ReceiveMessage",
            code: "ThrottlingException".into(),
            message: "slow down".into(),
        });
        assert!(throttled.is_retryable());
        let denied = QueueError::Aws(CloudError::Unauthorized(
            "ReceiveMessage: AccessDenied".into(),
        ));
        assert!(!denied.is_retryable());
        assert!(!QueueError::NotFound("Karpenter-demo".into()).is_retryable());
        assert_eq!(
            QueueError::NotFound("Karpenter-demo".into()).to_string(),
            "GetQueueUrl: no URL for queue \"Karpenter-demo\""
        );
    }
}
