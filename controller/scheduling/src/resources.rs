//! Resource amounts as plain integers, for fast packing arithmetic:
//! CPU in millicores, memory and storage in bytes, pods as a count, extended
//! resources (GPUs, hugepages, ...) in whole units rounded up.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use karpenter_api::quantity::Quantity;
use std::collections::BTreeMap;

/// An amount of every resource a pod can request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_milli: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub storage: i64,
    /// Pod slots.
    pub pods: i64,
    /// Extended resources (`nvidia.com/gpu`, `hugepages-2Mi`, ...).
    pub extended: BTreeMap<String, i64>,
}

impl Resources {
    /// From a Kubernetes resource list (`cpu: 500m`, `memory: 1Gi`, ...).
    pub fn from_list<'a>(list: impl IntoIterator<Item = (&'a String, &'a Quantity)>) -> Self {
        let mut out = Resources::default();
        for (name, q) in list {
            out.set(name, q);
        }
        out
    }

    /// From a Kubernetes API resource list; an amount that does not parse is
    /// left out (the API server would have rejected it).
    pub fn from_api<'a>(list: impl IntoIterator<Item = (&'a String, &'a ApiQuantity)>) -> Self {
        let mut out = Resources::default();
        for (name, q) in list {
            if let Ok(q) = Quantity::try_from(q) {
                out.set(name, &q);
            }
        }
        out
    }

    /// Sets one resource by its Kubernetes name.
    pub fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.cpu_milli = q.milli_value(),
            "memory" => self.memory = q.value(),
            "ephemeral-storage" => self.storage = q.value(),
            "pods" => self.pods = q.value(),
            other => {
                self.extended.insert(other.to_string(), q.value());
            }
        }
    }

    /// Adds `other` in place. Sums saturate: requests too large to add up
    /// (two `7Ei` containers) stay the largest amount, which fits nowhere,
    /// instead of wrapping round to a negative request.
    pub fn add(&mut self, other: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_add(other.cpu_milli);
        self.memory = self.memory.saturating_add(other.memory);
        self.storage = self.storage.saturating_add(other.storage);
        self.pods = self.pods.saturating_add(other.pods);
        for (name, amount) in &other.extended {
            let entry = self.extended.entry(name.clone()).or_insert(0);
            *entry = entry.saturating_add(*amount);
        }
    }

    /// Takes `other` away in place (what is left after placing a pod); saturating.
    pub fn subtract(&mut self, other: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_sub(other.cpu_milli);
        self.memory = self.memory.saturating_sub(other.memory);
        self.storage = self.storage.saturating_sub(other.storage);
        self.pods = self.pods.saturating_sub(other.pods);
        for (name, amount) in &other.extended {
            let entry = self.extended.entry(name.clone()).or_insert(0);
            *entry = entry.saturating_sub(*amount);
        }
    }

    /// Each resource the larger of the two (init containers against the rest).
    pub fn max(&mut self, other: &Resources) {
        self.cpu_milli = self.cpu_milli.max(other.cpu_milli);
        self.memory = self.memory.max(other.memory);
        self.storage = self.storage.max(other.storage);
        self.pods = self.pods.max(other.pods);
        for (name, amount) in &other.extended {
            let entry = self.extended.entry(name.clone()).or_insert(0);
            *entry = (*entry).max(*amount);
        }
    }

    /// True when `self` (requests) fits within `capacity`.
    pub fn fits_in(&self, capacity: &Resources) -> bool {
        self.cpu_milli <= capacity.cpu_milli
            && self.memory <= capacity.memory
            && self.storage <= capacity.storage
            && self.pods <= capacity.pods
            && self.extended.iter().all(|(name, amount)| {
                *amount <= 0 || capacity.extended.get(name).is_some_and(|c| amount <= c)
            })
    }

    /// True when `self` (a node's capacity) stays within `limits`; extended
    /// resources the limits do not name are unlimited.
    pub fn within_limits(&self, limits: &Resources) -> bool {
        self.cpu_milli <= limits.cpu_milli
            && self.memory <= limits.memory
            && self.storage <= limits.storage
            && self.pods <= limits.pods
            && self.extended.iter().all(|(name, amount)| {
                limits
                    .extended
                    .get(name)
                    .is_none_or(|limit| amount <= limit)
            })
    }

    /// The first resource that does not fit, for explanations (`cpu`, `nvidia.com/gpu`).
    pub fn first_shortfall(&self, capacity: &Resources) -> Option<String> {
        if self.cpu_milli > capacity.cpu_milli {
            return Some("cpu".into());
        }
        if self.memory > capacity.memory {
            return Some("memory".into());
        }
        if self.storage > capacity.storage {
            return Some("ephemeral-storage".into());
        }
        if self.pods > capacity.pods {
            return Some("pods".into());
        }
        self.extended
            .iter()
            .find(|(name, amount)| {
                **amount > 0 && capacity.extended.get(*name).is_none_or(|c| *amount > c)
            })
            .map(|(name, _)| name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cpu: i64, mem: i64, gpu: i64) -> Resources {
        let mut r = Resources {
            cpu_milli: cpu,
            memory: mem,
            pods: 1,
            ..Default::default()
        };
        if gpu > 0 {
            r.extended.insert("nvidia.com/gpu".into(), gpu);
        }
        r
    }

    #[test]
    fn requests_too_large_to_add_up_fit_nowhere() {
        let huge: Quantity = "7Ei".parse().unwrap();
        let mut pod = Resources::default();
        for _ in 0..2 {
            let mut container = Resources::default();
            container.set("memory", &huge);
            pod.add(&container);
        }
        assert_eq!(pod.memory, i64::MAX, "saturated, not wrapped negative");
        let mut biggest = Resources::default();
        biggest.set("memory", &"24Ti".parse().unwrap());
        assert!(!pod.fits_in(&biggest));
        assert_eq!(pod.first_shortfall(&biggest).as_deref(), Some("memory"));
    }

    #[test]
    fn fit_and_shortfall() {
        let capacity = Resources {
            cpu_milli: 2000,
            memory: 4 << 30,
            storage: 1 << 30,
            pods: 10,
            ..Default::default()
        };
        assert!(r(1000, 1 << 30, 0).fits_in(&capacity));
        assert_eq!(
            r(3000, 0, 0).first_shortfall(&capacity).as_deref(),
            Some("cpu")
        );
        assert_eq!(
            r(0, 0, 1).first_shortfall(&capacity).as_deref(),
            Some("nvidia.com/gpu")
        );
        let mut total = r(500, 1, 1);
        total.add(&r(500, 1, 1));
        assert_eq!(
            (
                total.cpu_milli,
                total.pods,
                total.extended["nvidia.com/gpu"]
            ),
            (1000, 2, 2)
        );
        let mut init = r(200, 5, 0);
        init.max(&r(100, 10, 0));
        assert_eq!((init.cpu_milli, init.memory), (200, 10));
    }
}
