//! The CRS sandbox: a local stand-in for Tencent's Redis API used by tests and `make run`.
