//! The object store: every object as JSON, one global resourceVersion counter,
//! finalizers, owner-reference garbage collection, namespace deletion, and a
//! bounded event history that watches resume from (older versions get `410 Gone`).
//!
//! The store knows nothing about HTTP; admission (defaulting, validation) happens
//! before it is called.

use crate::resources::ResourceType;
use crate::status::ApiError;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

mod gc;

/// Events kept for watches that resume from a resourceVersion.
const HISTORY: usize = 20_000;
/// Events buffered per watcher before it is dropped as too slow.
const WATCH_BUFFER: usize = 32_768;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch wire name (`ADDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// Added, modified or deleted.
    pub event_type: EventType,
    /// `plural.group` of the object.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// The object after the change (before removal for deletions).
    pub object: Arc<Value>,
    /// The object before a modification, so filtered watches can tell when it
    /// enters or leaves their selector.
    pub previous: Option<Arc<Value>>,
    /// `object` as JSON, encoded once for all watchers.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
    /// The resourceVersion of the change.
    pub rv: u64,
}

/// The beginning of a watch: what to send first, then the live events.
pub struct WatchStart {
    /// Current objects (as ADDED) or the history after the requested version.
    pub initial: Vec<Arc<WatchEvent>>,
    /// Every later change (of all resources; the watcher filters).
    pub receiver: broadcast::Receiver<Arc<WatchEvent>>,
    /// The resourceVersion the initial events bring the watcher to.
    pub resource_version: u64,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status` when the kind has a status subresource.
    Main,
    /// Only `status`.
    Status,
}

/// How a delete treats dependents (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are deleted after the owner (the default).
    #[default]
    Background,
    /// The owner waits (finalizer `foregroundDeletion`) until dependents are gone.
    Foreground,
    /// Dependents lose the owner reference and stay.
    Orphan,
}

/// Options of a delete request.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Precondition: the object's uid.
    pub uid: Option<String>,
    /// Precondition: the object's resourceVersion.
    pub resource_version: Option<String>,
    /// Propagation policy for dependents.
    pub propagation: Propagation,
    /// Grace period in seconds (recorded as `deletionGracePeriodSeconds`).
    pub grace_period_seconds: Option<i64>,
    /// Keep the object until something else removes it (pods on a node: the kubelet).
    pub graceful: bool,
}

type Key = (String, String);

struct Inner {
    rv: u64,
    objects: HashMap<String, BTreeMap<Key, Arc<Value>>>,
    /// Kind information of every resource seen, for garbage collection.
    types: HashMap<String, ResourceType>,
    history: VecDeque<Arc<WatchEvent>>,
    /// How many events `history` keeps.
    history_capacity: usize,
    /// The oldest resourceVersion a watch may resume from.
    compacted: u64,
}

/// The store behind the API server.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::with_history(HISTORY)
    }
}

/// Current time as the API server writes it.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str()
}

fn finalizers(obj: &Value) -> usize {
    obj["metadata"]["finalizers"].as_array().map_or(0, Vec::len)
}

/// Everything but metadata and status: a change here bumps `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

impl Store {
    /// A store whose watches can resume from the last `capacity` events.
    pub fn with_history(capacity: usize) -> Self {
        let inner = Inner {
            rv: 0,
            objects: HashMap::new(),
            types: HashMap::new(),
            history: VecDeque::new(),
            history_capacity: capacity.max(1),
            compacted: 0,
        };
        Store {
            inner: Mutex::new(inner),
            events: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    /// Every change from now on (controllers filter by resource).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("store lock poisoned")
    }

    /// Reads one object.
    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let inner = self.lock();
        Self::find(&inner, rt, namespace, name).cloned()
    }

    fn find<'a>(
        inner: &'a Inner,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<&'a Arc<Value>, ApiError> {
        inner
            .objects
            .get(&rt.group_resource())
            .and_then(|objects| objects.get(&(namespace.to_string(), name.to_string())))
            .ok_or_else(|| ApiError::not_found(&rt.group_resource(), name))
    }

    /// Every object of a kind (in one namespace, or all), sorted, and the resourceVersion.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .get(&rt.group_resource())
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                    .map(|(_, obj)| obj.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// Creates an object: name (or generateName), uid, timestamps, resourceVersion, generation.
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        if rt.namespaced {
            let ns_key = (String::new(), namespace.to_string());
            let ns = inner.objects.get("namespaces").and_then(|n| n.get(&ns_key));
            match ns {
                None => return Err(ApiError::not_found("namespaces", namespace)),
                Some(ns) if ns["metadata"]["deletionTimestamp"].is_string() => {
                    return Err(ApiError {
                        code: 403,
                        reason: "Forbidden",
                        message: format!(
                            "{} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                            rt.group_resource()
                        ),
                        details: None,
                    });
                }
                Some(_) => {}
            }
        }
        let metadata = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
        let name = match metadata.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        vec![(
                            "metadata.name".into(),
                            "name or generateName is required".into(),
                        )],
                    ));
                }
            },
        };
        let mut key = (
            if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name,
        );
        let taken = |key: &(String, String)| {
            inner
                .objects
                .get(&rt.group_resource())
                .is_some_and(|o| o.contains_key(key))
        };
        // Like the API server since 1.31 (RetryGenerateName), a generated
        // name that collides is drawn again. Admission drew the first one,
        // so a name of the prefix plus a suffix's length counts as generated.
        let generated = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|prefix| key.1.starts_with(prefix) && key.1.len() == prefix.len() + SUFFIX_LEN)
            .map(str::to_string);
        if let Some(prefix) = generated {
            for _ in 1..GENERATE_NAME_ATTEMPTS {
                if !taken(&key) {
                    break;
                }
                key.1 = format!("{prefix}{}", random_suffix());
            }
        }
        if taken(&key) {
            return Err(ApiError::already_exists(&rt.group_resource(), &key.1));
        }
        let name = key.1.clone();
        metadata.insert("name".into(), json!(name));
        if rt.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        metadata.insert("creationTimestamp".into(), json!(now()));
        if rt.tracks_generation() {
            metadata.insert("generation".into(), json!(1));
        } else {
            metadata.remove("generation");
        }
        metadata.remove("deletionTimestamp");
        metadata.remove("deletionGracePeriodSeconds");
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        Ok(self.put(&mut inner, rt, &key, obj, None))
    }

    /// Replaces an object (or its status), with optimistic concurrency when the
    /// body carries a resourceVersion. A no-op write keeps the resourceVersion.
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut obj: Value,
        part: Part,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let current = Self::find(&inner, rt, namespace, name)?.clone();
        if let Some(rv) = meta_str(&obj, "resourceVersion")
            && rv != meta_str(&current, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::conflict(&rt.group_resource(), name));
        }
        if meta_str(&obj, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&obj, "name").unwrap_or_default()
            )));
        }
        match part {
            Part::Status => {
                let status = obj.get("status").cloned();
                obj = (*current).clone();
                match status {
                    Some(status) => obj["status"] = status,
                    None => {
                        obj.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            Part::Main if rt.has_status() => match current.get("status") {
                Some(status) => obj["status"] = status.clone(),
                None => {
                    obj.as_object_mut().map(|m| m.remove("status"));
                }
            },
            Part::Main => {}
        }
        // Server-owned metadata is kept from the stored object.
        let current_meta = meta(&current).clone();
        let metadata = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match current_meta.get(field) {
                Some(v) => metadata.insert(field.into(), v.clone()),
                None => metadata.remove(field),
            };
        }
        metadata.insert(
            "resourceVersion".into(),
            current_meta["resourceVersion"].clone(),
        );
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        if obj == *current {
            return Ok(current);
        }
        if rt.tracks_generation() && spec_part(&obj) != spec_part(&current) {
            let generation = current_meta["generation"].as_i64().unwrap_or(1) + 1;
            obj["metadata"]["generation"] = json!(generation);
        }
        let key = (namespace.to_string(), name.to_string());
        if obj["metadata"]["deletionTimestamp"].is_string() && finalizers(&obj) == 0 {
            let obj = self.remove(&mut inner, rt, &key, obj, Propagation::Background);
            return Ok(obj);
        }
        let obj = self.put(&mut inner, rt, &key, obj, Some(current));
        Ok(obj)
    }

    /// Deletes an object: marks it when finalizers (or a graceful delete) hold it,
    /// removes it otherwise, then collects dependents by owner reference.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let current = Self::find(&inner, rt, namespace, name)?.clone();
        if opts
            .uid
            .as_deref()
            .is_some_and(|uid| Some(uid) != meta_str(&current, "uid"))
        {
            return Err(ApiError::conflict(&rt.group_resource(), name));
        }
        if opts
            .resource_version
            .as_deref()
            .is_some_and(|rv| Some(rv) != meta_str(&current, "resourceVersion"))
        {
            return Err(ApiError::conflict(&rt.group_resource(), name));
        }
        let key = (namespace.to_string(), name.to_string());
        let mut obj = (*current).clone();
        if opts.propagation == Propagation::Foreground && self.has_dependents(&inner, &current) {
            add_finalizer(&mut obj, "foregroundDeletion");
        }
        if rt.plural == "namespaces" && rt.group.is_empty() {
            obj["status"]["phase"] = json!("Terminating");
        }
        let holds = finalizers(&obj) > 0
            || opts.graceful
            || (rt.plural == "namespaces" && self.namespace_has_content(&inner, name));
        if holds {
            if current["metadata"]["deletionTimestamp"].is_string() {
                return Ok(current);
            }
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] =
                json!(opts.grace_period_seconds.unwrap_or(0));
            let obj = self.put(&mut inner, rt, &key, obj, Some(current));
            if rt.plural == "namespaces" && rt.group.is_empty() {
                self.delete_namespace_content(&mut inner, name);
            }
            self.cascade_foreground(&mut inner, &obj);
            return Ok(obj);
        }
        Ok(self.remove(&mut inner, rt, &key, obj, opts.propagation))
    }

    /// Stores a new or changed object under the next resourceVersion and tells
    /// watchers (ADDED without `previous`, MODIFIED with it).
    fn put(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        key: &Key,
        mut obj: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        let rv = inner.rv + 1;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(obj);
        inner
            .types
            .entry(rt.group_resource())
            .or_insert_with(|| rt.clone());
        inner
            .objects
            .entry(rt.group_resource())
            .or_default()
            .insert(key.clone(), obj.clone());
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(inner, event, rt, &key.0, obj.clone(), previous, rv);
        obj
    }

    /// Removes an object for good (the DELETED event carries the next
    /// resourceVersion), then its dependents (background) or their owner
    /// references (orphan).
    fn remove(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        key: &Key,
        mut obj: Value,
        propagation: Propagation,
    ) -> Arc<Value> {
        if let Some(objects) = inner.objects.get_mut(&rt.group_resource()) {
            objects.remove(key);
        }
        let rv = inner.rv + 1;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(obj);
        self.record(inner, EventType::Deleted, rt, &key.0, obj.clone(), None, rv);
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        self.collect_dependents(inner, &uid, propagation);
        // An owner waiting in the foreground may be free now.
        self.release_foreground_owners(inner, &obj);
        // A terminating namespace goes once its last object is gone.
        if rt.namespaced && !key.0.is_empty() {
            self.finish_namespace(inner, &key.0);
        }
        obj
    }

    /// Starts a watch: the events to send first (current objects as ADDED when
    /// `from` is `None`/0, else the history after `from`) and the live receiver.
    /// A `from` older than the kept history is `410 Gone`.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let receiver = self.events.subscribe();
        let resource = rt.group_resource();
        let in_scope =
            |e: &WatchEvent| e.resource == resource && namespace.is_none_or(|ns| e.namespace == ns);
        let initial = match from {
            None | Some(0) => inner
                .objects
                .get(&resource)
                .into_iter()
                .flatten()
                .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                .map(|((ns, _), obj)| {
                    Arc::new(WatchEvent {
                        event_type: EventType::Added,
                        resource: resource.clone(),
                        namespace: ns.clone(),
                        object: obj.clone(),
                        previous: None,
                        encoded: Default::default(),
                        rv: inner.rv,
                    })
                })
                .collect(),
            Some(from) if from < inner.compacted => {
                return Err(ApiError::gone(format!(
                    "too old resource version: {from} ({})",
                    inner.compacted
                )));
            }
            Some(from) => inner
                .history
                .iter()
                .filter(|e| e.rv > from && in_scope(e))
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            initial,
            receiver,
            resource_version: inner.rv,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        inner: &mut Inner,
        event_type: EventType,
        rt: &ResourceType,
        namespace: &str,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
        rv: u64,
    ) {
        inner.rv = rv;
        let event = Arc::new(WatchEvent {
            event_type,
            resource: rt.group_resource(),
            namespace: namespace.to_string(),
            object,
            previous,
            encoded: Default::default(),
            rv,
        });
        if inner.history.len() >= inner.history_capacity
            && let Some(oldest) = inner.history.pop_front()
        {
            inner.compacted = oldest.rv;
        }
        inner.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Number of objects held, per resource (for benchmarks and status).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.lock()
            .objects
            .iter()
            .map(|(r, o)| (r.clone(), o.len()))
            .collect()
    }
}

fn owned_by(obj: &Value, owner_uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid)))
}

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let list = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !list.iter().any(|f| f == finalizer) {
        let mut list = list;
        list.push(json!(finalizer));
        obj["metadata"]["finalizers"] = json!(list);
    }
}

/// How many names `generateName` draws before it reports a collision.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// The length of the suffix `generateName` appends.
const SUFFIX_LEN: usize = 5;

/// Five lower-case alphanumerics, as `generateName` appends.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..SUFFIX_LEN]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
