//! Garbage collection: an instance tagged for this cluster whose NodeClaim
//! no longer exists (a crash between launch and status write, a claim
//! removed by hand) is terminated once it has been seen unowned for a grace
//! period, so a slow cache never costs a live node.

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use karpenter_api::labels;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The garbage collector and the orphans it has seen.
pub struct GarbageCollector<C> {
    ctx: Arc<Context<C>>,
    grace: Duration,
    /// Instance provider ID -> when first seen without a NodeClaim.
    orphans: Mutex<HashMap<String, Instant>>,
}

impl<C: CloudProvider + 'static> GarbageCollector<C> {
    /// A collector that waits `grace` before terminating an orphan.
    pub fn new(ctx: Arc<Context<C>>, grace: Duration) -> Self {
        GarbageCollector {
            ctx,
            grace,
            orphans: Mutex::new(HashMap::new()),
        }
    }

    /// Runs a pass every `every`.
    pub async fn run(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let runtime = &self.ctx.metrics.runtime;
            runtime.workers("instance.garbagecollection", 1);
            if let Err(e) = runtime
                .reconcile("instance.garbagecollection", self.pass())
                .await
            {
                tracing::warn!(error = %e, "garbage collection failed");
            }
        }
    }

    /// One pass; returns the instances terminated.
    pub async fn pass(&self) -> Result<Vec<String>, crate::cloud::CloudError> {
        let ctx = &self.ctx;
        let instances = ctx.metrics.cloud_call("List", ctx.cloud.list()).await?;
        let now = Instant::now();
        let mut doomed = Vec::new();
        {
            let mut orphans = self.orphans.lock().expect("orphans");
            let mut still = HashMap::new();
            for instance in instances {
                let owned = instance
                    .tags
                    .get(labels::NODECLAIM)
                    .is_some_and(|name| ctx.state.claim(name).is_some())
                    || ctx
                        .state
                        .claim_for_provider_id(&instance.provider_id)
                        .is_some();
                if owned {
                    continue;
                }
                let first = orphans.get(&instance.provider_id).copied().unwrap_or(now);
                if now.duration_since(first) >= self.grace {
                    doomed.push(instance.provider_id);
                } else {
                    still.insert(instance.provider_id, first);
                }
            }
            *orphans = still;
        }
        for provider_id in &doomed {
            tracing::info!(instance = %provider_id, "terminating an instance no NodeClaim owns");
            match ctx
                .metrics
                .cloud_call("Delete", ctx.cloud.delete(provider_id))
                .await
            {
                Ok(()) | Err(crate::cloud::CloudError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(doomed)
    }
}
