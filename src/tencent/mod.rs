//! Tencent Cloud CRS client: request signing, the API 2.0 and 3.0 wire formats, error codes.

pub mod sign;
