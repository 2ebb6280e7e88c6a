//! The REST layer: routes a request to discovery or to a resource handler and
//! turns results and [`ApiError`]s into responses.

mod discovery;
mod objects;
mod openapi;
mod protobuf;
mod query;
mod scale;
mod table;
mod watch;

use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::{Kubesim, ResponseBody};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
pub(crate) use query::Query;
use serde_json::Value;

/// A request addressed to a resource.
pub(crate) struct Target {
    pub(crate) rt: ResourceType,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

/// Answers one request.
pub(crate) async fn handle<B>(sim: &Kubesim, request: http::Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )));
        }
    };
    let mut query = Query::parse(parts.uri.query().unwrap_or_default());
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    query.as_table = table::wanted(accept);
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (segments.as_slice(), &parts.method) {
        (["version"], &Method::GET) => Ok(discovery::version()),
        (["api"], &Method::GET) => Ok(discovery::core_versions()),
        (["apis"], &Method::GET) => Ok(discovery::groups(sim)),
        (["api", "v1"], &Method::GET) => Ok(discovery::resources(sim, "", "v1")),
        (["apis", group], &Method::GET) => discovery::group(sim, group),
        (["apis", group, version], &Method::GET) => Ok(discovery::resources(sim, group, version)),
        (["openapi", "v2"], &Method::GET) => return openapi::v2_empty(),
        (["openapi", "v3"], &Method::GET) => Ok(openapi::index(sim)),
        (["openapi", "v3", "api", version], &Method::GET) => openapi::document(sim, "", version),
        (["openapi", "v3", "apis", group, version], &Method::GET) => {
            openapi::document(sim, group, version)
        }
        (["api", "v1", rest @ ..], method) => {
            dispatch(sim, "", "v1", rest, method, &query, &content_type, &body).await
        }
        (["apis", group, version, rest @ ..], method) => {
            dispatch(
                sim,
                group,
                version,
                rest,
                method,
                &query,
                &content_type,
                &body,
            )
            .await
        }
        _ => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
        }),
    };
    match result {
        Ok(Reply::Json(code, value)) => json(code, &value),
        Ok(Reply::Stream(body)) => Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("Transfer-Encoding", "chunked")
            .body(body)
            .expect("valid response"),
        Err(e) => error(&e),
    }
}

/// What a handler answers.
pub(crate) enum Reply {
    /// A JSON document with a status code.
    Json(u16, Value),
    /// A watch stream.
    Stream(ResponseBody),
}

impl Reply {
    pub(crate) fn ok(value: Value) -> Self {
        Reply::Json(200, value)
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    sim: &Kubesim,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    query: &Query,
    content_type: &str,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let target = parse_target(sim, group, version, rest)?;
    objects::serve(sim, target, method, query, content_type, body).await
}

/// `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`; `namespaces/{ns}[/{sub}]` is a namespace.
fn parse_target(
    sim: &Kubesim,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(more);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::not_found("resource", &rest.join("/"))),
    };
    let rt = sim
        .inner
        .registry
        .get(group, version, plural)
        .ok_or_else(|| ApiError {
            code: 404,
            reason: "NotFound",
            message: format!(
                "the server could not find the requested resource ({plural}.{group}/{version})"
            ),
            details: None,
        })?;
    if let Some(sub) = &subresource
        && !rt.subresources.contains(sub)
    {
        return Err(ApiError::not_found(
            &format!("{}/{sub}", rt.group_resource()),
            name.as_deref().unwrap_or(""),
        ));
    }
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::not_found(
            &rt.group_resource(),
            name.as_deref().unwrap_or(""),
        ));
    }
    Ok(Target {
        rt,
        namespace,
        name,
        subresource,
    })
}

/// A JSON response.
pub(crate) fn json(code: u16, value: &Value) -> Response<ResponseBody> {
    let bytes = serde_json::to_vec(value).expect("JSON values serialize");
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response")
}

/// An error response with a `Status` body.
pub(crate) fn error(e: &ApiError) -> Response<ResponseBody> {
    json(e.code, &e.to_status())
}
