//! API 2.0 wire format (`/v2/index.php`): form or query parameters, HmacSHA1/HmacSHA256
//! signatures with Timestamp and Nonce, and the `{"code","message","codeDesc"}` envelope.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::{check_timestamp, check_token, credential, now_unix};
use super::conn::Connection;
use super::errors::{ApiError, Code};
use super::faults::{Wire, answer};
use super::state::{Page, RestoreRequest, TaskFilter, region_id};
use super::{Shared, json_response};
use crate::tencent::sign::{SignatureMethod, v2_string_to_sign, v2_verify};

pub(crate) const PATH: &str = "/v2/index.php";

const REQUIRED_COMMON: [&str; 6] = ["Action", "Region", "Timestamp", "Nonce", "SecretId", "Signature"];

/// The v2 envelope. Tencent sends `code` as a number on most actions and as a string on some
/// (e.g. DescribeRedis), so the sandbox does the same to keep clients lenient.
struct V2 {
    code_as_string: bool,
}

impl V2 {
    fn envelope(&self, code: i64, message: &str, code_desc: &str) -> Map<String, Value> {
        let code = if self.code_as_string { Value::String(code.to_string()) } else { Value::from(code) };
        let mut body = Map::new();
        body.insert("code".into(), code);
        body.insert("message".into(), message.into());
        body.insert("codeDesc".into(), code_desc.into());
        body
    }

    fn success(&self, fields: Map<String, Value>) -> Response {
        let mut body = self.envelope(0, "", "Success");
        body.extend(fields);
        json_response(Value::Object(body))
    }
}

impl Wire for V2 {
    fn error_response(&self, err: &ApiError) -> Response {
        json_response(Value::Object(self.envelope(err.v2_code, &err.message, &err.v2_desc)))
    }

    fn sample_json(&self) -> String {
        Value::Object(self.envelope(0, "", "Success")).to_string()
    }
}

type Params = Vec<(String, String)>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Absent and empty parameters are the same thing to Tencent's validators.
fn non_empty<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    param(params, name).filter(|v| !v.is_empty())
}

fn int_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    non_empty(params, name)
        .map(|v| v.parse().map_err(|_| ApiError::new(Code::InvalidParameter, format!("{name}={v} is not an integer"))))
        .transpose()
}

fn parse_pairs(input: &[u8]) -> Params {
    form_urlencoded::parse(input).into_owned().collect()
}

/// Reads the parameters from wherever this method carries them. The parameters come back even
/// when the request is refused, so its Action is still counted.
fn read_params(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (Params, Result<(), ApiError>) {
    let query = parse_pairs(uri.query().unwrap_or_default().as_bytes());
    let params = match *method {
        Method::GET => query,
        Method::POST => {
            // A password in a URL ends up in proxy and access logs; refuse it before anything else.
            if query.iter().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
                let err = ApiError::new(
                    Code::MalformedRequest,
                    "password must travel in the POST body, never in the URL query string",
                );
                return (parse_pairs(body), Err(err));
            }
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let media_type = content_type.split(';').next().unwrap_or_default().trim();
            if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                let err = ApiError::new(
                    Code::MalformedRequest,
                    format!("POST needs Content-Type application/x-www-form-urlencoded, got {content_type:?}"),
                );
                return (parse_pairs(body), Err(err));
            }
            parse_pairs(body)
        }
        _ => {
            let err = ApiError::new(Code::MalformedRequest, format!("method {method} is not GET or POST"));
            return (query, Err(err));
        }
    };
    let duplicate = params.iter().enumerate().find(|(i, (k, _))| params[..*i].iter().any(|(other, _)| other == k));
    if let Some((_, (name, _))) = duplicate {
        let err = ApiError::new(Code::MalformedRequest, format!("parameter {name} is given twice"));
        return (params, Err(err));
    }
    (params, Ok(()))
}

/// The string to sign uses the host without its port (as the official SDKs do).
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Connection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, readable) = read_params(&method, &uri, &headers, &body);
    let action = non_empty(&params, "Action").map(str::to_owned);
    let wire = V2 { code_as_string: action.as_deref() == Some("DescribeRedis") };
    answer(&shared, &conn, &wire, action.as_deref(), || {
        let outcome = readable
            .and_then(|()| authenticate(&shared, &method, &headers, &params))
            .and_then(|()| dispatch(&shared, &params));
        match outcome {
            Ok(fields) => wire.success(fields),
            Err(err) => {
                tracing::info!(action, code = err.v2_code, reason = %err.message, "v2 request refused");
                wire.error_response(&err)
            }
        }
    })
    .await
}

fn authenticate(shared: &Shared, method: &Method, headers: &HeaderMap, params: &Params) -> Result<(), ApiError> {
    if let Some(missing) = REQUIRED_COMMON.iter().find(|name| non_empty(params, name).is_none()) {
        return Err(ApiError::new(Code::MissingParameter, format!("{missing} is required")));
    }
    let get = |name| non_empty(params, name).unwrap_or_default();
    let timestamp: i64 = get("Timestamp")
        .parse()
        .map_err(|_| ApiError::new(Code::MalformedRequest, "Timestamp must be UNIX seconds"))?;
    if get("Nonce").parse::<u64>().map_or(true, |n| n == 0) {
        return Err(ApiError::new(Code::MalformedRequest, "Nonce must be a positive integer"));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new(Code::MalformedRequest, "a Host header is required"))?;

    let secret_id = get("SecretId");
    let credential = credential(&shared.credentials, secret_id)?;
    let now = now_unix();
    check_timestamp(timestamp, now, shared.tolerance_secs)?;

    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let string_to_sign = v2_string_to_sign(method.as_str(), host_without_port(host), PATH, &pairs);
    let signature_method = SignatureMethod::from_request_param(param(params, "SignatureMethod"));
    let signature_ok = v2_verify(credential.secret_key.as_bytes(), signature_method, &string_to_sign, get("Signature"));

    let mut state = shared.lock();
    let nonce = get("Nonce");
    if state.nonces.contains(secret_id, nonce) {
        return Err(ApiError::new(Code::SignatureExpire, format!("Nonce {nonce} was already used")));
    }
    if !signature_ok {
        // The string to sign holds the instance password in clear, so only a redacted copy is
        // shown, and only to whoever reads the sandbox's own debug log.
        let redacted: Vec<(&str, &str)> =
            pairs.iter().map(|&(k, v)| if k == "password" { (k, "<redacted>") } else { (k, v) }).collect();
        let shown = v2_string_to_sign(method.as_str(), host_without_port(host), PATH, &redacted);
        tracing::debug!(string_to_sign = %shown, "v2 signature mismatch");
        return Err(ApiError::new(
            Code::AuthFailure,
            format!(
                "the signature does not match; the sandbox signed {} {}{PATH} (SignatureMethod {})",
                method,
                host_without_port(host),
                signature_method.as_str()
            ),
        ));
    }
    check_token(credential, param(params, "Token"))?;
    state.nonces.remember(secret_id, nonce, now, shared.tolerance_secs);
    Ok(())
}

fn dispatch(shared: &Shared, params: &Params) -> Result<Map<String, Value>, ApiError> {
    let get = |name| non_empty(params, name).unwrap_or_default();
    let region = non_empty(params, "Region");
    let now = Instant::now();
    let mut fields = Map::new();
    match get("Action") {
        "RestoreInstance" => {
            let request = RestoreRequest {
                redis_id: get("redisId"),
                backup_id: get("backupId"),
                password: non_empty(params, "password"),
                region,
            };
            let task_id = shared.lock().restore(request, now)?;
            fields.insert("data".into(), json!({ "requestId": task_id }));
        }
        "DescribeTaskInfo" => {
            let id = non_empty(params, "requestId")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::new(Code::InvalidParameter, "requestId must be a task id"))?;
            let task = shared.lock().task(id, now)?;
            fields.insert("data".into(), json!({ "status": task.status.v2_code() }));
        }
        "GetRedisBackupList" => {
            let page = Page::new(int_param(params, "limit")?, int_param(params, "offset")?)?;
            let (total, _, backups) = shared.lock().backups(get("redisId"), region, page)?;
            let set: Vec<Value> = backups
                .iter()
                .map(|b| {
                    json!({
                        "startTime": b.start_time,
                        "backupId": b.backup_id,
                        "backupType": b.backup_type,
                        "status": b.status,
                        "remark": "",
                        "locked": b.locked,
                    })
                })
                .collect();
            fields.insert("totalCount".into(), total.into());
            fields.insert("data".into(), json!({ "redisBackupSet": set }));
        }
        "GetRedisTaskList" => {
            // Both are marked required in the v2 table.
            let (Some(limit), Some(offset)) = (int_param(params, "limit")?, int_param(params, "offset")?) else {
                return Err(ApiError::new(Code::InvalidParameter, "limit and offset are required"));
            };
            let page = Page::new(Some(limit), Some(offset))?;
            let statuses = indexed(params, "taskStatus")
                .into_iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| ApiError::new(Code::InvalidParameter, format!("taskStatus {v} is not an integer")))
                })
                .collect::<Result<Vec<i64>, _>>()?;
            let filter = TaskFilter {
                redis_id: non_empty(params, "redisId"),
                types: indexed(params, "taskType").into_iter().map(str::to_owned).collect(),
                begin: non_empty(params, "beginTime"),
                end: non_empty(params, "endTime"),
                statuses,
                v2: true,
            };
            let (total, tasks) = shared.lock().list_tasks(&filter, page, now)?;
            // The documented v2 shape: no task id, no end time, progress 0 (unfinished) / 1 (finished).
            let set: Vec<Value> = tasks
                .iter()
                .map(|t| {
                    let finished = t.status.v2_code() >= 2 || t.status.v2_code() < 0;
                    json!({
                        "startTime": t.start_time,
                        "taskName": t.v2_name.unwrap_or_default(),
                        "redisName": t.instance_name,
                        "redisId": t.redis_id,
                        "projectId": 0,
                        "status": t.status.v2_code(),
                        "progress": i64::from(finished),
                    })
                })
                .collect();
            fields.insert("totalCount".into(), total.into());
            fields.insert("data".into(), json!({ "redisTaskSet": set }));
        }
        "DescribeRedis" => {
            let page = Page::new(int_param(params, "limit")?, int_param(params, "offset")?)?;
            let (total, instances) = shared.lock().instances(non_empty(params, "redisId"), region, page);
            let set: Vec<Value> = instances
                .iter()
                .map(|i| {
                    json!({
                        "redisId": i.redis_id,
                        "redisName": i.name,
                        "regionId": region_id(&i.region),
                        "status": i.status.to_string(),
                        "statusDesc": status_desc(i.status),
                        "port": "6379",
                        "size": "1024",
                    })
                })
                .collect();
            fields.insert("totalCount".into(), total.into());
            fields.insert("data".into(), json!({ "redisSet": set }));
        }
        other => {
            return Err(ApiError::new(Code::InvalidAction, format!("Action {other} is not supported")));
        }
    }
    Ok(fields)
}

/// The values of `name.0`, `name.1`, ... in index order (API 2.0 arrays).
fn indexed<'a>(params: &'a Params, name: &str) -> Vec<&'a str> {
    let mut items: Vec<(u32, &str)> = params
        .iter()
        .filter_map(|(k, v)| {
            let index = k.strip_prefix(name)?.strip_prefix('.')?.parse().ok()?;
            Some((index, v.as_str()))
        })
        .collect();
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, v)| v).collect()
}

/// Tencent's own wording, in Chinese as the v2 API returns it.
fn status_desc(status: i64) -> &'static str {
    match status {
        0 => "待初始化",
        1 => "流程中",
        2 => "运行中",
        -2 => "已隔离",
        _ => "未知",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_stripped_from_the_host_for_signing() {
        assert_eq!(host_without_port("127.0.0.1:9001"), "127.0.0.1");
        assert_eq!(host_without_port("redis.api.qcloud.com"), "redis.api.qcloud.com");
        assert_eq!(host_without_port("[::1]:9001"), "[::1]");
        assert_eq!(host_without_port("[::1"), "[::1");
    }
}
