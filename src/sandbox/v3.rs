//! API 3.0 wire format (`/`, Version 2018-04-12): JSON bodies signed with TC3-HMAC-SHA256 and
//! the `{"Response": {...}}` envelope.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::{check_timestamp, check_token, credential, ct_eq, now_unix};
use super::clone::{CloneRequest, price_in_hundredths};
use super::config::SeedTag;
use super::conn::Connection;
use super::errors::{ApiError, Code};
use super::faults::{Wire, answer};
use super::state::{Instance, Page, RestoreRequest, region_id};
use super::{Shared, json_response};
use crate::tencent::sign::{Tc3Input, tc3_sign};

const VERSION: &str = "2018-04-12";
const SERVICE: &str = "redis";

struct V3;

impl V3 {
    fn respond(mut fields: Map<String, Value>) -> Response {
        fields.insert("RequestId".into(), request_id().into());
        json_response(json!({ "Response": fields }))
    }
}

impl Wire for V3 {
    fn error_response(&self, err: &ApiError) -> Response {
        let mut fields = Map::new();
        fields.insert("Error".into(), json!({ "Code": err.v3_code, "Message": err.message }));
        Self::respond(fields)
    }

    fn sample_json(&self) -> String {
        json!({ "Response": { "TaskId": 0, "RequestId": request_id() } }).to_string()
    }
}

/// Looks like Tencent's RequestId (a UUID); only uniqueness matters.
fn request_id() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = header_str(&headers, "x-tc-action").filter(|a| !a.is_empty());
    answer(&shared, &conn, &V3, action, || {
        let outcome = authenticate(&shared, &method, &headers, &body).and_then(|()| dispatch(&shared, &headers, &body));
        match outcome {
            Ok(fields) => V3::respond(fields),
            Err(err) => {
                tracing::info!(action, code = %err.v3_code, reason = %err.message, "v3 request refused");
                V3.error_response(&err)
            }
        }
    })
    .await
}

/// The parts of `Authorization: TC3-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    secret_id: &'a str,
    date: &'a str,
    service: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, &'static str> {
    let rest = value.strip_prefix("TC3-HMAC-SHA256 ").ok_or("the algorithm must be TC3-HMAC-SHA256")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or("expected key=value parts")?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err("unexpected part"),
        };
        if slot.replace(value).is_some() {
            return Err("a part is repeated");
        }
    }
    let credential = credential.ok_or("Credential is missing")?;
    let mut scope = credential.split('/');
    let (Some(secret_id), Some(date), Some(service), Some("tc3_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err("Credential must be SecretId/Date/Service/tc3_request");
    };
    // Newer docs allow signing x-tc-action too; this client signs exactly these two.
    if signed_headers != Some("content-type;host") {
        return Err("the sandbox verifies SignedHeaders=content-type;host only");
    }
    let signature = signature.ok_or("Signature is missing")?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature must be 64 hex digits");
    }
    Ok(Authorization { secret_id, date, service, signature })
}

fn authenticate(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            Code::MalformedRequest,
            format!("the sandbox serves API 3.0 over POST only, got {method}"),
        ));
    }
    if header_str(headers, "x-tc-action").is_none_or(str::is_empty) {
        return Err(ApiError::new(Code::MissingParameter, "X-TC-Action is required"));
    }
    // Signed byte for byte as received: a client that signs `application/json` but sends
    // `application/json; charset=utf-8` must fail here just as it would at Tencent.
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            Code::MalformedRequest,
            format!("Content-Type must be application/json, got {content_type:?}"),
        ));
    }
    let authorization = header_str(headers, header::AUTHORIZATION.as_str())
        .ok_or_else(|| ApiError::new(Code::InvalidAuthorization, "the Authorization header is missing"))
        .and_then(|value| parse_authorization(value).map_err(|why| ApiError::new(Code::InvalidAuthorization, why)))?;
    let credential = credential(&shared.credentials, authorization.secret_id)?;
    let timestamp: i64 = header_str(headers, "x-tc-timestamp")
        .ok_or_else(|| ApiError::new(Code::MissingParameter, "X-TC-Timestamp is required"))?
        .parse()
        .map_err(|_| ApiError::new(Code::MalformedRequest, "X-TC-Timestamp must be UNIX seconds"))?;
    check_timestamp(timestamp, now_unix(), shared.tolerance_secs)?;
    let host = header_str(headers, header::HOST.as_str())
        .ok_or_else(|| ApiError::new(Code::MalformedRequest, "a Host header is required"))?;

    let expected = tc3_sign(
        credential.secret_key.as_bytes(),
        &Tc3Input { http_method: "POST", query: "", content_type, host, payload: body, service: SERVICE, timestamp },
    );
    if authorization.date != expected.date || authorization.service != SERVICE {
        return Err(ApiError::new(
            Code::AuthFailure,
            format!(
                "the credential scope must be {}/{SERVICE}/tc3_request (the UTC date of X-TC-Timestamp)",
                expected.date
            ),
        ));
    }
    if !ct_eq(authorization.signature.as_bytes(), expected.signature.as_bytes()) {
        tracing::debug!(canonical_request = %expected.canonical_request, "v3 signature mismatch");
        return Err(ApiError::new(
            Code::AuthFailure,
            format!(
                "the signature does not match; the sandbox's canonical request is {:?}",
                expected.canonical_request
            ),
        ));
    }
    check_token(credential, header_str(headers, "x-tc-token"))?;
    match header_str(headers, "x-tc-version") {
        None => Err(ApiError::new(Code::MissingParameter, "X-TC-Version is required")),
        Some(VERSION) => Ok(()),
        Some(other) => Err(ApiError::new(Code::NoSuchVersion, format!("Version {other} is not {VERSION}"))),
    }
}

fn invalid(name: &str, expected: &str) -> ApiError {
    ApiError::new(Code::InvalidParameter, format!("{name} must be {expected}"))
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, "a string")),
    }
}

fn int_field(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| invalid(name, "an integer")),
    }
}

fn string_list(body: &Map<String, Value>, name: &str) -> Result<Vec<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| invalid(name, "a list of strings")))
            .collect(),
        Some(_) => Err(invalid(name, "a list of strings")),
    }
}

/// DescribeInstances' filters the function uses: one id, several ids, tag keys, tag pairs.
struct InstanceFilter {
    id: Option<String>,
    ids: Vec<String>,
    tag_keys: Vec<String>,
    tags: Vec<(String, String)>,
}

impl InstanceFilter {
    fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let tags = match body.get("InstanceTags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| match (t.get("TagKey").and_then(Value::as_str), t.get("TagValue").and_then(Value::as_str)) {
                    (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(invalid("InstanceTags", "a list of {TagKey, TagValue}")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("InstanceTags", "a list of {TagKey, TagValue}")),
        };
        Ok(Self {
            id: string_field(body, "InstanceId")?.filter(|id| !id.is_empty()).map(str::to_owned),
            ids: string_list(body, "InstanceIds")?,
            tag_keys: string_list(body, "TagKeys")?,
            tags,
        })
    }

    fn keeps(&self, i: &Instance) -> bool {
        self.id.as_ref().is_none_or(|id| &i.redis_id == id)
            && (self.ids.is_empty() || self.ids.contains(&i.redis_id))
            && self.tag_keys.iter().all(|k| i.tags.iter().any(|t| &t.key == k))
            && self.tags.iter().all(|(k, v)| i.tags.iter().any(|t| &t.key == k && &t.value == v))
    }
}

/// Unix seconds as Tencent writes times: `YYYY-MM-DD HH:MM:SS`, Beijing time.
fn beijing(unix: i64) -> String {
    super::config::beijing_time(
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

/// One `InstanceSet` entry with the fields and JSON types of models.py's `InstanceSet`.
fn instance_json(i: &Instance, now: Instant) -> Value {
    let cluster = i.type_id % 2 == 1 && i.type_id != 5 || i.type_id == 4;
    json!({
        "InstanceId": i.redis_id,
        "InstanceName": i.name,
        "Status": i.status_at(now),
        "RegionId": region_id(&i.region),
        "Region": i.region,
        "ZoneId": i.network.zone_id,
        "Type": i.type_id,
        "ProductType": if cluster { "cluster" } else { "standalone" },
        "UniqVpcId": i.network.vpc_id,
        "UniqSubnetId": i.network.subnet_id,
        "WanIp": i.network.vip,
        "Port": i.network.port,
        "ProjectId": i.network.project_id,
        "Size": i.size_mb as f64,
        "RedisShardNum": i.shard_num,
        "RedisReplicasNum": i.replicas_num,
        "Createtime": beijing(i.created_unix),
        // models.py: when an isolated instance goes offline (2 h after isolation for
        // pay-as-you-go, 7 days for prepaid); empty otherwise.
        "OfflineTime": i.isolated_unix
            .map(|t| beijing(t + if i.billing_mode == 0 { 2 * 3600 } else { 7 * 86_400 }))
            .unwrap_or_default(),
        "NoAuth": i.password.is_none(),
        "BillingMode": i.billing_mode,
        "BackupMode": i.backup_mode(),
        "ProductVersion": "local",
        "InstanceTags": i.tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect::<Vec<_>>(),
    })
}

fn dispatch(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let body: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::MalformedRequest, format!("the body is not a JSON object: {e}")))?;
    let region = header_str(headers, "x-tc-region").filter(|r| !r.is_empty());
    let now = Instant::now();
    let mut fields = Map::new();
    match header_str(headers, "x-tc-action").unwrap_or_default() {
        "RestoreInstance" => {
            let request = RestoreRequest {
                redis_id: string_field(&body, "InstanceId")?.unwrap_or_default(),
                backup_id: string_field(&body, "BackupId")?.unwrap_or_default(),
                password: string_field(&body, "Password")?,
                region,
            };
            let task_id = shared.lock().restore(request, now)?;
            // An integer, as models.py declares it and Tencent's examples send it.
            fields.insert("TaskId".into(), task_id.into());
        }
        "DescribeTaskInfo" => {
            let id = match body.get("TaskId") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| invalid("TaskId", "a task id"))?;
            let task = shared.lock().task(id, now)?;
            fields.insert("Status".into(), task.status.v3_name().into());
            fields.insert("StartTime".into(), task.start_time.into());
            fields.insert("TaskType".into(), "redis备份恢复流程".into());
            fields.insert("InstanceId".into(), task.redis_id.into());
            fields.insert("TaskMessage".into(), task.message.into());
        }
        "DescribeInstanceBackups" => {
            let page = Page::new(int_field(&body, "Limit")?, int_field(&body, "Offset")?)?;
            let redis_id = string_field(&body, "InstanceId")?.unwrap_or_default();
            let (total, instance, backups) = shared.lock().backups(redis_id, region, page)?;
            let set: Vec<Value> = backups
                .iter()
                .map(|b| {
                    json!({
                        "BackupId": b.backup_id,
                        "StartTime": b.start_time,
                        "BackupType": if b.backup_type == "manualBackupInstance" { "0" } else { "1" },
                        "Status": b.status,
                        "Remark": "",
                        "Locked": b.locked,
                        "InstanceId": instance.redis_id,
                        "InstanceName": instance.name,
                        "Region": instance.region,
                    })
                })
                .collect();
            fields.insert("TotalCount".into(), total.into());
            fields.insert("BackupSet".into(), set.into());
        }
        "DescribeInstances" => {
            // Tencent documents 1000 as this action's maximum (DescribeInstanceBackups': 100).
            let page = Page::up_to(1000, int_field(&body, "Limit")?, int_field(&body, "Offset")?)?;
            let filter = InstanceFilter::parse(&body)?;
            let (total, instances) = shared.lock().instances_where(region, page, |i| filter.keeps(i));
            let set: Vec<Value> = instances.iter().map(|i| instance_json(i, now)).collect();
            fields.insert("TotalCount".into(), total.into());
            fields.insert("InstanceSet".into(), set.into());
        }
        "DescribeInstanceSecurityGroup" => {
            let ids = string_list(&body, "InstanceIds")?;
            if ids.is_empty() {
                return Err(ApiError::new(Code::MissingParameter, "InstanceIds is required"));
            }
            let details = shared.lock().security_groups(&ids, region);
            fields.insert("InstanceSecurityGroupsDetail".into(), details.into());
        }
        "DescribeSecondLevelBackupInfo" => {
            let redis_id = string_field(&body, "InstanceId")?.unwrap_or_default();
            let at = int_field(&body, "BackupTimestamp")?
                .ok_or_else(|| ApiError::new(Code::MissingParameter, "BackupTimestamp is required"))?;
            fields = shared.lock().second_level_info(redis_id, region, at)?;
        }
        "InquiryPriceCreateInstance" => {
            let number = |name: &str| int_field(&body, name);
            let type_id =
                number("TypeId")?.ok_or_else(|| ApiError::new(Code::MissingParameter, "TypeId is required"))?;
            let mem = number("MemSize")?.ok_or_else(|| ApiError::new(Code::MissingParameter, "MemSize is required"))?;
            let billing = number("BillingMode")?.unwrap_or(0);
            if !(2..=18).contains(&type_id) || mem <= 0 || mem % 1024 != 0 {
                return Err(ApiError::named("InvalidParameterValue.SpecNotExist"));
            }
            let price = price_in_hundredths(
                mem,
                number("RedisShardNum")?.unwrap_or(1),
                number("RedisReplicasNum")?.unwrap_or(1),
                billing,
                number("Period")?.unwrap_or(1),
                number("GoodsNum")?.unwrap_or(1),
            );
            for name in ["Price", "HighPrecisionPrice", "OriginalPrice", "HighPrecisionOriginalPrice"] {
                fields.insert(name.into(), price.into());
            }
            fields.insert("Currency".into(), "CNY".into());
            fields.insert("AmountUnit".into(), "pent".into());
        }
        "DestroyPostpaidInstance" => {
            let redis_id = string_field(&body, "InstanceId")?.unwrap_or_default();
            let task_id = shared.lock().destroy_postpaid(redis_id, region, super::auth::now_unix())?;
            fields.insert("TaskId".into(), task_id.into());
        }
        "CleanUpInstance" => {
            let redis_id = string_field(&body, "InstanceId")?.unwrap_or_default();
            let task_id = shared.lock().clean_up(redis_id, region)?;
            fields.insert("TaskId".into(), task_id.into());
        }
        "CloneInstances" => {
            let number = |name: &str| int_field(&body, name);
            let tags = match body.get("ResourceTags") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|t| {
                        match (t.get("TagKey").and_then(Value::as_str), t.get("TagValue").and_then(Value::as_str)) {
                            (Some(key), Some(value)) => Ok(SeedTag { key: key.to_owned(), value: value.to_owned() }),
                            _ => Err(invalid("ResourceTags", "a list of {TagKey, TagValue}")),
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(invalid("ResourceTags", "a list of {TagKey, TagValue}")),
            };
            let no_auth = match body.get("NoAuth") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid("NoAuth", "true or false")),
            };
            let request = CloneRequest {
                source: string_field(&body, "InstanceId")?.unwrap_or_default(),
                goods_num: number("GoodsNum")?.unwrap_or(0),
                zone_id: number("ZoneId")?.unwrap_or(0),
                billing_mode: number("BillingMode")?.unwrap_or(-1),
                period: number("Period")?.unwrap_or(0),
                security_groups: string_list(&body, "SecurityGroupIdList")?,
                backup_id: string_field(&body, "BackupId")?.unwrap_or_default(),
                no_auth,
                vpc_id: string_field(&body, "VpcId")?.filter(|v| !v.is_empty()),
                subnet_id: string_field(&body, "SubnetId")?.filter(|v| !v.is_empty()),
                name: string_field(&body, "InstanceName")?,
                password: string_field(&body, "Password")?,
                port: number("VPort")?,
                project_id: number("ProjectId")?,
                tags,
                clone_time: string_field(&body, "CloneTime")?.filter(|v| !v.is_empty()),
            };
            if request.backup_id.is_empty() {
                return Err(ApiError::new(Code::MissingParameter, "BackupId is required"));
            }
            let deal = shared.lock().clone_instance(&request, region, now)?;
            fields.insert("DealId".into(), deal.deal_id.into());
            fields.insert("DealName".into(), deal.deal_name.into());
            fields.insert("InstanceIds".into(), deal.instance_ids.into());
        }
        other => {
            return Err(ApiError::new(Code::InvalidAction, format!("Action {other} is not supported")));
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_authorization_header_is_split_into_its_parts() {
        let sig = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        let value = format!(
            "TC3-HMAC-SHA256 Credential=AKIDx/2019-02-25/redis/tc3_request, SignedHeaders=content-type;host, Signature={sig}"
        );
        assert_eq!(
            parse_authorization(&value),
            Ok(Authorization { secret_id: "AKIDx", date: "2019-02-25", service: "redis", signature: sig })
        );
    }

    #[test]
    fn malformed_authorization_headers_are_refused() {
        let sig = "a".repeat(64);
        for bad in [
            format!("HMAC Credential=a/d/redis/tc3_request, SignedHeaders=content-type;host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential=a/d/redis, SignedHeaders=content-type;host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential=a/d/redis/tc3_request, SignedHeaders=host, Signature={sig}"),
            "TC3-HMAC-SHA256 Credential=a/d/redis/tc3_request, SignedHeaders=content-type;host, Signature=zz"
                .to_owned(),
            "TC3-HMAC-SHA256 Credential=a/d/redis/tc3_request, SignedHeaders=content-type;host".to_owned(),
            String::new(),
        ] {
            assert!(parse_authorization(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
