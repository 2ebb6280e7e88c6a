//! Where interruption messages come from: SQS through the AWS SDK (long
//! poll, 10 messages, 20 s), or an in-memory queue for the offline demo and
//! fast tests (no SQS exists offline; the simulated EC2's messages go there).

use aws_sdk_sqs::types::MessageSystemAttributeName;
use k8s_openapi::jiff::Timestamp;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
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

/// A source of interruption messages.
pub trait MessageQueue: Send + Sync {
    /// Waits for up to 10 messages (returns empty after the long-poll wait).
    fn receive(&self) -> impl Future<Output = Result<Vec<Received>, String>> + Send;
    /// Deletes a handled (or unreadable) message.
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// The SQS interruption queue.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// AWS's code and message for a failed SQS call (the operation named).
fn describe<E, R>(operation: &'static str, err: aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    crate::cloud::aws::sdk::cloud_error(operation, err).to_string()
}

impl SqsQueue {
    /// Looks the queue up by name (`INTERRUPTION_QUEUE`).
    pub async fn connect(config: &aws_config::SdkConfig, name: &str) -> Result<Self, String> {
        let client = aws_sdk_sqs::Client::new(config);
        let url = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| describe("GetQueueUrl", e))?
            .queue_url
            .ok_or_else(|| format!("GetQueueUrl: no URL for queue {name:?}"))?;
        Ok(SqsQueue { client, url })
    }
}

impl MessageQueue for SqsQueue {
    async fn receive(&self) -> Result<Vec<Received>, String> {
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

    async fn delete(&self, receipt: &str) -> Result<(), String> {
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
/// demo and fast tests). Messages are removed when received.
#[derive(Default)]
pub struct InMemoryQueue {
    messages: Mutex<VecDeque<Received>>,
    arrived: Notify,
}

impl InMemoryQueue {
    /// Enqueues a message body.
    pub fn send(&self, body: String) {
        let mut messages = self.messages.lock().expect("queue");
        let receipt = format!("m-{}", messages.len());
        messages.push_back(Received {
            receipt,
            body,
            sent: Some(Timestamp::now()),
        });
        drop(messages);
        self.arrived.notify_one();
    }
}

impl MessageQueue for InMemoryQueue {
    async fn receive(&self) -> Result<Vec<Received>, String> {
        loop {
            let notified = self.arrived.notified();
            {
                let mut messages = self.messages.lock().expect("queue");
                if !messages.is_empty() {
                    let n = messages.len().min(10);
                    return Ok(messages.drain(..n).collect());
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(20)) => return Ok(Vec::new()),
            }
        }
    }

    async fn delete(&self, _receipt: &str) -> Result<(), String> {
        Ok(())
    }
}
