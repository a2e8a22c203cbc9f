//! Standard Webhooks verification on arbitrary headers and bodies: never panics, never accepts
//! what the configured key did not sign, and a signed body verifies until any byte changes.
#![no_main]

use crs_restore::signature::{SignatureError, SignedHeaders, WebhookSecret, sign, verify};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let keys = [WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key")];
    // Arbitrary headers and body: split at 0xff bytes.
    let mut parts = data.splitn(4, |b| *b == 0xff);
    let text = |p: Option<&[u8]>| p.map(|b| String::from_utf8_lossy(b).into_owned());
    let (id, ts, sig) = (text(parts.next()), text(parts.next()), text(parts.next()));
    let body = parts.next().unwrap_or_default();
    let headers = SignedHeaders { id: id.as_deref(), timestamp: ts.as_deref(), signature: sig.as_deref() };
    assert!(verify(&keys, |k| k, headers, body, NOW).is_err(), "an unsigned request was accepted");

    // The same body, signed: accepted; with its first byte changed: refused.
    let signed = sign(&keys[0], "msg_fuzz", NOW, data);
    let headers = SignedHeaders { id: Some("msg_fuzz"), timestamp: Some("1700000000"), signature: Some(&signed) };
    assert!(verify(&keys, |k| k, headers, data, NOW).is_ok());
    if let Some(first) = data.first() {
        let mut changed = data.to_vec();
        changed[0] = first ^ 0x01;
        assert_eq!(verify(&keys, |k| k, headers, &changed, NOW).err(), Some(SignatureError::NoMatch));
    }
});
