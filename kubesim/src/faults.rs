//! Fault injection for tests: a client of this control plane whose requests
//! fail by rule (method, a path fragment, how many times, which status), as
//! a real API server fails under load, during an upgrade or behind a flaky
//! network. The control plane itself is untouched: other clients see no fault.

use crate::Kubesim;
use serde_json::json;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// One rule: requests with `method` (any when `None`) whose path contains
/// `path` fail with `status`, the next `times` times.
#[derive(Debug, Clone)]
struct Rule {
    method: Option<http::Method>,
    path: String,
    status: u16,
    times: usize,
}

/// The rules a faulty client applies; cloning shares them. It also keeps
/// every request the client made (method, path, query), so a test can hold
/// them against RBAC rules.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    injected: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<(http::Method, String, String)>>>,
    /// A fraction of every other request (watches aside) fails with 500,
    /// drawn from a seeded generator: (fraction, generator state).
    random: Arc<Mutex<Option<(f64, u64)>>>,
}

impl Faults {
    /// No faults yet.
    pub fn new() -> Self {
        Faults::default()
    }

    /// The next `times` requests with `method` whose path contains `path` fail with `status`.
    pub fn fail(&self, method: Option<http::Method>, path: &str, status: u16, times: usize) {
        self.lock_rules().push(Rule {
            method,
            path: path.to_string(),
            status,
            times,
        });
    }

    /// The requests failed so far (`METHOD path -> status`).
    pub fn injected(&self) -> Vec<String> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// From now on, `fraction` of the requests (watches aside) fail with a
    /// 500, chosen by a generator seeded with `seed`; 0 stops it.
    pub fn fail_fraction(&self, fraction: f64, seed: u64) {
        *self.random.lock().unwrap_or_else(|p| p.into_inner()) =
            (fraction > 0.0).then_some((fraction, seed.max(1)));
    }

    /// Every request made through the client: (method, path, query).
    pub fn requests(&self) -> Vec<(http::Method, String, String)> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status to fail `request` with, if a rule says so (and counts it).
    fn status_for<B>(&self, request: &http::Request<B>) -> Option<u16> {
        let path = request.uri().path();
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                request.method().clone(),
                path.to_string(),
                request.uri().query().unwrap_or_default().to_string(),
            ));
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        if !watch
            && let Some((fraction, state)) = self
                .random
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
        {
            // xorshift64*: deterministic for the seed.
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            let draw =
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            if draw < *fraction {
                self.injected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{} {path} -> 500 (random)", request.method()));
                return Some(500);
            }
        }
        let mut rules = self.lock_rules();
        let rule = rules.iter_mut().find(|r| {
            r.times > 0
                && r.method.as_ref().is_none_or(|m| m == request.method())
                && path.contains(&r.path)
        })?;
        rule.times -= 1;
        let status = rule.status;
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} {path} -> {status}", request.method()));
        Some(status)
    }
}

impl Kubesim {
    /// A client whose requests fail as `faults` says, else are answered as usual.
    pub fn faulty_client(&self, faults: &Faults) -> kube::Client {
        let sim = self.clone();
        let faults = faults.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let sim = sim.clone();
            let faulted = faults.status_for(&request);
            async move {
                let response = match faulted {
                    Some(code) => crate::api::json(
                        code,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "injected fault", "reason": "InternalError", "code": code}),
                    ),
                    None => sim.handle(request).await,
                };
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, "default")
    }
}
