//! A fault-injection proxy in front of moto, for the EC2 behaviour moto does
//! not have (DESIGN.md §4). Everything else passes through untouched.
//!
//! Emulated, and said so in each test that relies on it:
//! - **capacity**: CreateFleet overrides for an exhausted (type, zone,
//!   lifecycle) are removed from the request and reported in the response's
//!   `errorSet` as `InsufficientInstanceCapacity`, as EC2 does; when none is
//!   left the response has errors and no instances (moto never fails a fleet);
//! - **throttling**: the next N calls of an action get HTTP 503
//!   `RequestLimitExceeded`;
//! - **denied calls**: an action gets HTTP 403 `UnauthorizedOperation`;
//! - **spot prices**: `DescribeSpotPriceHistory` answers the catalog's
//!   modelled spot prices (moto returns 0.00001 for every type and zone);
//! - **lost responses**: the next N calls of an action reach moto, but the
//!   caller gets HTTP 500 `InternalError` (a timeout after AWS acted);
//! - **idempotency**: a CreateFleet whose `ClientToken` was seen gets the
//!   first answer again without a second launch, as EC2 does (moto ignores
//!   the token).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use karpenter_controller::catalog::{CapacityType, Catalog};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the proxy does to the calls passing through.
#[derive(Debug, Default)]
pub struct Faults {
    /// Offerings without capacity: (type, zone, `spot`/`on-demand`).
    pub exhausted: HashSet<(String, String, String)>,
    /// Calls still to throttle, by action.
    pub throttle: HashMap<String, u32>,
    /// Actions answered with UnauthorizedOperation.
    pub deny: HashSet<String>,
    /// Every action seen, in order (query actions and JSON targets).
    pub seen: Vec<String>,
    /// Calls still to forward and then answer with a 500, by action.
    pub lose_response: HashMap<String, u32>,
    /// CreateFleet answers by `ClientToken`.
    pub fleet_tokens: HashMap<String, Bytes>,
    /// Every call, for the IAM evaluation.
    pub requests: Vec<Recorded>,
}

/// One call the proxy saw.
pub use test_support::aws_requests::AwsCall as Recorded;

/// The running proxy.
pub struct FaultProxy {
    /// Its endpoint URL.
    pub endpoint: String,
    /// The faults it injects (change them at any time).
    pub faults: Arc<Mutex<Faults>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = Full<Bytes>;

fn xml(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn error(status: u16, code: &str, message: &str) -> Response<Body> {
    xml(
        status,
        format!(
            "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
        ),
    )
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: String) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let faults = Arc::new(Mutex::new(Faults::default()));
        let client: Client<HttpConnector, Body> =
            Client::builder(TokioExecutor::new()).build_http();
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, faults, upstream) = (client.clone(), shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, client.clone(), faults.clone(), upstream.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint,
            faults,
            task,
        }
    }

    /// Runs `f` on the faults.
    pub fn with<T>(&self, f: impl FnOnce(&mut Faults) -> T) -> T {
        f(&mut self.faults.lock().unwrap())
    }
}

/// Whether this call's answer is lost (one of `lose_response`'s).
fn lose(faults: &Mutex<Faults>, action: &str) -> bool {
    let mut f = faults.lock().unwrap();
    match f.lose_response.get_mut(action).filter(|n| **n > 0) {
        Some(left) => {
            *left -= 1;
            true
        }
        None => false,
    }
}

async fn handle(
    req: Request<Incoming>,
    client: Client<HttpConnector, Body>,
    faults: Arc<Mutex<Faults>>,
    upstream: String,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (mut parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let call = Recorded::parse(&header("authorization"), &header("x-amz-target"), &body);
    let action = call.action.clone();
    let form = call.params.clone();
    let exhausted = {
        let mut f = faults.lock().unwrap();
        f.seen.push(action.clone());
        f.requests.push(call);
        if f.deny.contains(&action) {
            return Ok(error(
                403,
                "UnauthorizedOperation",
                &format!("You are not authorized to perform this operation ({action})."),
            ));
        }
        if let Some(left) = f.throttle.get_mut(&action).filter(|n| **n > 0) {
            *left -= 1;
            return Ok(error(
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ));
        }
        f.exhausted.clone()
    };
    if action == "DescribeSpotPriceHistory" {
        return Ok(spot_price_history());
    }
    let token = (action == "CreateFleet")
        .then(|| {
            form.iter()
                .find(|(k, _)| k == "ClientToken")
                .map(|(_, v)| v.clone())
        })
        .flatten();
    if let Some(answer) = token
        .as_ref()
        .and_then(|t| faults.lock().unwrap().fleet_tokens.get(t).cloned())
    {
        if lose(&faults, &action) {
            return Ok(error(500, "InternalError", "the response was lost"));
        }
        return Ok(xml(200, String::from_utf8_lossy(&answer).into_owned()));
    }
    let mut fleet_errors = String::new();
    let mut body = body;
    if action == "CreateFleet" && !exhausted.is_empty() {
        let (kept, errors) = split_fleet(&form, &exhausted);
        fleet_errors = errors;
        match kept {
            None => {
                return Ok(xml(
                    200,
                    format!(
                        "<CreateFleetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>fault-proxy</requestId><fleetId>fleet-00000000-0000-0000-0000-000000000000</fleetId><errorSet>{fleet_errors}</errorSet><fleetInstanceSet/></CreateFleetResponse>"
                    ),
                ));
            }
            Some(rewritten) => {
                body = Bytes::from(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(rewritten)
                        .finish(),
                );
                parts.headers.insert("content-length", body.len().into());
            }
        }
    }
    let uri = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    parts.uri = uri.parse().expect("a valid upstream URI");
    parts.headers.remove("host");
    let response = match client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(r) => r,
        Err(e) => return Ok(error(502, "ProxyError", &e.to_string())),
    };
    let (parts, body) = response.into_parts();
    let mut bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !fleet_errors.is_empty() {
        let text = String::from_utf8_lossy(&bytes).replace(
            "</CreateFleetResponse>",
            &format!("<errorSet>{fleet_errors}</errorSet></CreateFleetResponse>"),
        );
        bytes = Bytes::from(text);
    }
    {
        let mut f = faults.lock().unwrap();
        if let Some(token) = token.filter(|_| parts.status.is_success()) {
            f.fleet_tokens.insert(token, bytes.clone());
        }
    }
    if lose(&faults, &action) {
        return Ok(error(500, "InternalError", "the response was lost"));
    }
    let mut response = Response::from_parts(parts, Full::new(bytes.clone()));
    response
        .headers_mut()
        .insert("content-length", bytes.len().into());
    response.headers_mut().remove("transfer-encoding");
    Ok(response)
}

/// Form fields, as (name, value) pairs.
type Fields = Vec<(String, String)>;

/// A CreateFleet form's launch template configs by index: the config's own
/// fields, and its overrides' fields by index.
type FleetConfigs = BTreeMap<u32, (Fields, BTreeMap<u32, Fields>)>;

/// Removes exhausted overrides from a CreateFleet form. Returns the rewritten
/// form (`None` when nothing is left) and the `errorSet` items for the removed ones.
fn split_fleet(
    form: &[(String, String)],
    exhausted: &HashSet<(String, String, String)>,
) -> (Option<Vec<(String, String)>>, String) {
    let lifecycle = form
        .iter()
        .find(|(k, _)| k == "TargetCapacitySpecification.DefaultTargetCapacityType")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "on-demand".into());
    // configs[i] = (spec fields, overrides[j] = fields)
    let mut configs: FleetConfigs = BTreeMap::new();
    let mut other = Vec::new();
    for (k, v) in form {
        let Some(rest) = k.strip_prefix("LaunchTemplateConfigs.") else {
            other.push((k.clone(), v.clone()));
            continue;
        };
        let (i, field) = rest.split_once('.').expect("LaunchTemplateConfigs.N.Field");
        let config = configs.entry(i.parse().expect("index")).or_default();
        match field.strip_prefix("Overrides.") {
            Some(o) => {
                let (j, f) = o.split_once('.').expect("Overrides.N.Field");
                config
                    .1
                    .entry(j.parse().expect("index"))
                    .or_default()
                    .push((f.to_string(), v.clone()));
            }
            None => config.0.push((field.to_string(), v.clone())),
        }
    }
    let get = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut errors = String::new();
    let mut kept_form = other;
    let mut next_config = 0;
    for (spec, overrides) in configs.values() {
        let template = get(spec, "LaunchTemplateSpecification.LaunchTemplateName");
        let mut kept = Vec::new();
        for fields in overrides.values() {
            let (t, zone) = (get(fields, "InstanceType"), get(fields, "AvailabilityZone"));
            if exhausted.contains(&(t.clone(), zone.clone(), lifecycle.clone())) {
                errors.push_str(&format!(
                    "<item><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateName>{template}</launchTemplateName><version>$Latest</version></launchTemplateSpecification><overrides><instanceType>{t}</instanceType><subnetId>{}</subnetId><availabilityZone>{zone}</availabilityZone></overrides></launchTemplateAndOverrides><lifecycle>{lifecycle}</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>We currently do not have sufficient {t} capacity in the Availability Zone you requested ({zone}).</errorMessage></item>",
                    get(fields, "SubnetId")
                ));
            } else {
                kept.push(fields);
            }
        }
        if kept.is_empty() {
            continue;
        }
        next_config += 1;
        for (f, v) in spec {
            kept_form.push((
                format!("LaunchTemplateConfigs.{next_config}.{f}"),
                v.clone(),
            ));
        }
        for (j, fields) in kept.iter().enumerate() {
            for (f, v) in *fields {
                kept_form.push((
                    format!(
                        "LaunchTemplateConfigs.{next_config}.Overrides.{}.{f}",
                        j + 1
                    ),
                    v.clone(),
                ));
            }
        }
    }
    ((next_config > 0).then_some(kept_form), errors)
}

/// The catalog's modelled spot prices, in DescribeSpotPriceHistory's shape.
fn spot_price_history() -> Response<Body> {
    let mut items = String::new();
    for t in Catalog::us_east_1().iter() {
        for o in t
            .offerings
            .iter()
            .filter(|o| o.capacity_type == CapacityType::Spot)
        {
            items.push_str(&format!(
                "<item><availabilityZone>{}</availabilityZone><instanceType>{}</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>{:.6}</spotPrice><timestamp>2026-11-23T00:00:00.000Z</timestamp></item>",
                o.zone, t.name, o.price
            ));
        }
    }
    xml(
        200,
        format!(
            "<DescribeSpotPriceHistoryResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>fault-proxy</requestId><spotPriceHistorySet>{items}</spotPriceHistorySet></DescribeSpotPriceHistoryResponse>"
        ),
    )
}
