//! When each node's pods last changed, kept beside the pod cache by its
//! reflector.
//!
//! Disruption times `consolidateAfter` from a node's last pod event, as
//! upstream does. A watch that lags delivers a pod's binding and deletion
//! together, late; timing from when this replica *saw* the events (never
//! earlier than they happened) keeps a lagging cache from making a node
//! look empty for longer than it has been.

use super::CachedPod;
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The last pod event seen per node (by node name).
#[derive(Clone, Default)]
pub struct NodeActivity {
    last: Arc<RwLock<HashMap<String, Instant>>>,
}

impl NodeActivity {
    /// Records a pod event on the pod's node, if it is bound to one.
    pub(super) fn record(&self, event: &watcher::Event<CachedPod>) {
        let pod = match event {
            watcher::Event::Apply(pod)
            | watcher::Event::InitApply(pod)
            | watcher::Event::Delete(pod) => pod,
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            return;
        };
        let now = Instant::now();
        let mut last = self.last.write().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(node) {
            Some(at) => *at = now,
            None => {
                last.insert(node.to_string(), now);
            }
        }
    }

    /// When a pod on `node` last changed, if one was seen.
    pub fn last_pod_event(&self, node: &str) -> Option<Instant> {
        self.last
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .copied()
    }

    /// Forgets the nodes `keep` says are gone.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.last
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|node, _| keep(node));
    }
}
