//! crs-restore: restore a Tencent Cloud Redis (CRS) instance from one of its own backups on a
//! signed request. `main.rs` only wires these modules together; everything testable lives here.
#![forbid(unsafe_code)]

pub mod sandbox;
pub mod tencent;
