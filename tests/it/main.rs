//! The whole suite as one test binary (it links once). Tests that talk to a database run on
//! both backends via `backend_tests!`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod attacks;
mod authz;
mod browser;
mod cache;
mod channels;
mod confirmations;
mod crowdfunding;
mod dashboard;
mod deployment;
mod errors;
mod event_log;
mod events;
mod faults;
mod grants;
mod graphiql;
mod identity;
mod nodes;
mod notifications;
mod organizations;
mod partner_web;
mod partners;
mod payments;
mod projects;
mod read_path;
mod receipts;
mod reconcile;
mod response_cache;
mod schema;
mod settings;
mod spaces;
mod statements;
mod trainings;
mod transport;
mod trusted_documents;
mod units;
mod venues;
mod webhooks;
