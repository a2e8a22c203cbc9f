//! Lambda event classification and Function URL body decoding on arbitrary JSON: never panics.
#![no_main]

use crs_restore::event::{HttpRequest, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Incoming::Http(ev) = Incoming::classify(event) {
        let _ = HttpRequest::from_event(ev, 64 * 1024);
    }
});
