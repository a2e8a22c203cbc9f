//! Callback URL policy on arbitrary text: never panics; what is accepted is https, carries no
//! credentials, and an IP literal in it is a public address.
#![no_main]

use std::net::IpAddr;

use crs_restore::callback::{CallbackPolicy, CallbackUrl, ip_allowed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(url) = CallbackUrl::parse(&raw, &CallbackPolicy::default()) {
        let text = url.to_string();
        assert!(text.starts_with("https://"), "{text}");
        let host = url.host().trim_matches(['[', ']']);
        if let Ok(ip) = host.parse::<IpAddr>() {
            assert!(ip_allowed(ip, false), "{text}");
        }
        assert!(!text["https://".len()..].split('/').next().unwrap_or_default().contains('@'), "{text}");
    }
});
