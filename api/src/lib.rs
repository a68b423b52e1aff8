//! incubase: the GraphQL platform of a social-governance innovation service base.
pub mod auth;
pub mod cache;
pub mod config;
pub mod cors;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod listener;
pub mod ratelimit;
pub mod response_cache;
pub mod seed;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
