//! Objects by provider ID, kept beside the Node and NodeClaim caches.

use k8s_openapi::api::core::v1::Node;
use karpenter_api::v1::NodeClaim;
use kube::Resource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

/// Names of objects by provider ID, kept beside a store by its reflector so
/// the lookup a controller makes per NodeClaim is not a scan of every Node.
/// Entries may outlive their object (a deletion missed while a watch
/// restarts); lookups check the object they find, so a stale entry is
/// never believed.
pub(super) struct ProviderIdIndex<K> {
    names: Arc<RwLock<HashMap<String, String>>>,
    provider_id: fn(&K) -> Option<&str>,
}

impl<K> Clone for ProviderIdIndex<K> {
    fn clone(&self) -> Self {
        ProviderIdIndex {
            names: self.names.clone(),
            provider_id: self.provider_id,
        }
    }
}

impl<K> ProviderIdIndex<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    pub(super) fn new(provider_id: fn(&K) -> Option<&str>) -> Self {
        ProviderIdIndex {
            names: Arc::default(),
            provider_id,
        }
    }

    pub(super) fn record(&self, event: &watcher::Event<K>) {
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                if let (Some(id), Some(name)) = ((self.provider_id)(object), &object.meta().name) {
                    names.insert(id.to_string(), name.clone());
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(id) = (self.provider_id)(object)
                    && names.get(id) == object.meta().name.as_ref()
                {
                    names.remove(id);
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    pub(super) fn find(&self, store: &Store<K>, id: &str) -> Option<Arc<K>> {
        let name = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        store
            .get(&reflector::ObjectRef::new(&name))
            .filter(|object| (self.provider_id)(object) == Some(id))
    }
}

pub(super) fn node_provider_id(node: &Node) -> Option<&str> {
    node.spec.as_ref().and_then(|s| s.provider_id.as_deref())
}

pub(super) fn claim_provider_id(claim: &NodeClaim) -> Option<&str> {
    claim.status.as_ref().and_then(|s| s.provider_id.as_deref())
}
