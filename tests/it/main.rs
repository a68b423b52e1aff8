//! The whole suite as one test binary (it links once). Tests that talk to a database run on
//! both backends via `backend_tests!`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod authz;
mod cache;
mod organizations;
mod schema;
mod spaces;
mod transport;
mod units;
