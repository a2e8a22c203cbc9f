//! The three secret parsers on arbitrary text: never panic, and errors never echo the input.
#![no_main]

use crs_restore::auth::SigningKeys;
use crs_restore::secrets::{InstancePassword, SecretString, TencentCredentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data).into_owned();
    let s = SecretString::new(raw.clone());
    let errors = [
        TencentCredentials::from_secret("a", &s).err(),
        InstancePassword::from_secret("b", &s).err(),
        SigningKeys::from_secret("c", &s).err(),
    ];
    for e in errors.into_iter().flatten() {
        assert!(raw.len() < 16 || !e.to_string().contains(&raw), "{e}");
    }
});
