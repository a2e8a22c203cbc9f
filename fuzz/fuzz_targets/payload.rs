//! The restore payload parser on arbitrary bytes: never panics; what parses is valid.
#![no_main]

use crs_restore::payload::RestoreRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = RestoreRequest::parse(data) {
        let id = r.redis_id.as_str();
        assert!(id.len() == 12 && id.starts_with("crs-"));
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(data).expect("an object");
        assert_eq!(map.get("redisId").and_then(|v| v.as_str()), Some(id));
    }
});
