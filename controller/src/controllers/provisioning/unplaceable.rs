//! The pending pods the last provisioning batch could place nowhere (no
//! NodePool can launch a node for them, or its limits are reached), shared
//! with disruption: such a pod is no reason to hold back scale-down, since
//! no node removed could have held it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// Pod keys (`namespace/name`) the last batch could not place.
#[derive(Clone, Default)]
pub struct Unplaceable {
    keys: Arc<RwLock<HashSet<String>>>,
}

impl Unplaceable {
    /// Replaces the set with the last batch's answer.
    pub fn set(&self, keys: impl IntoIterator<Item = String>) {
        let mut set = self.keys.write().unwrap_or_else(|p| p.into_inner());
        set.clear();
        set.extend(keys);
        set.shrink_to_fit();
    }

    /// Whether the last batch could not place the pod.
    pub fn contains(&self, key: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_replaces_the_last_answer() {
        let unplaceable = Unplaceable::default();
        unplaceable.set(["default/huge".to_string()]);
        assert!(unplaceable.contains("default/huge"));
        unplaceable.set(["default/other".to_string()]);
        assert!(!unplaceable.contains("default/huge"));
        assert!(unplaceable.contains("default/other"));
    }
}
