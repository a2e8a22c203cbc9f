//! The three secret parsers on arbitrary text: never panic, and fail only as "malformed".
//! (That errors never echo secret values is a property in tests/properties.rs, with planted
//! values: here the fuzzer would learn the fixed message texts and feed them back.)
#![no_main]

use crs_restore::auth::SigningKeys;
use crs_restore::secrets::{InstancePassword, SecretString, SecretsError, TencentCredentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = SecretString::new(String::from_utf8_lossy(data).into_owned());
    let errors = [
        TencentCredentials::from_secret("a", &s).err(),
        InstancePassword::from_secret("b", &s).err(),
        SigningKeys::from_secret("c", &s).err(),
    ];
    for e in errors.into_iter().flatten() {
        assert!(matches!(e, SecretsError::Malformed { .. }), "{e}");
    }
});
