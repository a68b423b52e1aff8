//! Metrics through the `prometheus` crate, one registry per server instance (tests run many
//! instances in one process, so there is no global recorder): counters of SQL statements,
//! operations, request errors and response-cache hits, and two histograms per operation name,
//! its latency and the SQL statements it ran. `/metrics` renders the registry with the Redis
//! tier's health.
//!
//! Statements are counted per operation through a task-local counter that the request's
//! execution and its DataLoader batches ([`spawn_counted`]) share.
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntGauge, Registry, TextEncoder};

use crate::cache::RedisHealth;

/// Operation names kept as label values; later new names count as `other`, so a client
/// cannot grow the registry without bound.
const MAX_OPERATION_NAMES: usize = 200;

tokio::task_local! {
    static STATEMENTS: Arc<AtomicU64>;
}

pub struct Metrics {
    registry: Registry,
    pub sql_statements: IntCounter,
    pub sql_failures: IntCounter,
    pub graphql_operations: IntCounter,
    pub graphql_request_errors: IntCounter,
    pub http_requests: IntCounter,
    pub response_cache_hits: IntCounter,
    pub response_cache_misses: IntCounter,
    pub parsed_documents_reused: IntCounter,
    /// Confirmations handed to this instance's confirmation task and not yet taken by it.
    pub confirmations_waiting: IntGauge,
    /// Transactions that counted several confirmations together, and the confirmations they counted.
    pub confirmation_batches: IntCounter,
    pub confirmations_counted_together: IntCounter,
    /// Mirrors the process-wide count of the service layer's retries.
    transient_retries: Mirror,
    /// The Redis tier's health, rendered only when Redis is configured.
    redis: RedisMetrics,
    operation_seconds: HistogramVec,
    operation_statements: HistogramVec,
    names: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(clippy::expect_used)] // Metric definitions are constants: a bad one is a programming error.
fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("valid counter");
    registry.register(Box::new(counter.clone())).expect("unique metric");
    counter
}

#[allow(clippy::expect_used)] // As `counter`.
fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("valid gauge");
    registry.register(Box::new(gauge.clone())).expect("unique metric");
    gauge
}

impl Metrics {
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["operation"])
                .expect("valid histogram");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let operation_seconds = histogram(
            "incubase_graphql_operation_duration_seconds",
            "Time to answer one GraphQL operation, by operation name",
            vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0],
        );
        let operation_statements = histogram(
            "incubase_graphql_operation_sql_statements",
            "SQL statements one GraphQL operation ran, by operation name",
            vec![0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 50.0, 100.0],
        );
        let transient_retries = Mirror(Mutex::new(counter(
            &registry,
            "incubase_transient_retries_total",
            "Transactions retried after a transient error",
        )));
        Self {
            sql_statements: counter(&registry, "incubase_sql_statements_total", "SQL statements run for requests"),
            sql_failures: counter(&registry, "incubase_sql_failures_total", "SQL statements that failed"),
            graphql_operations: counter(&registry, "incubase_graphql_operations_total", "GraphQL operations received"),
            graphql_request_errors: counter(
                &registry,
                "incubase_graphql_request_errors_total",
                "GraphQL operations refused before execution",
            ),
            http_requests: counter(&registry, "incubase_http_graphql_requests_total", "HTTP requests to /graphql"),
            response_cache_hits: counter(
                &registry,
                "incubase_response_cache_hits_total",
                "Answers served from the response cache",
            ),
            response_cache_misses: counter(
                &registry,
                "incubase_response_cache_misses_total",
                "Cacheable answers computed because no valid entry existed",
            ),
            parsed_documents_reused: counter(
                &registry,
                "incubase_parsed_documents_reused_total",
                "GraphQL operations whose query text was parsed before and not parsed again",
            ),
            confirmations_waiting: gauge(
                &registry,
                "incubase_confirmations_waiting",
                "Confirmations waiting for this instance's confirmation task",
            ),
            confirmation_batches: counter(
                &registry,
                "incubase_confirmation_batches_total",
                "Transactions that counted several confirmations together",
            ),
            confirmations_counted_together: counter(
                &registry,
                "incubase_confirmations_counted_together_total",
                "Confirmations counted in a transaction with others",
            ),
            transient_retries,
            redis: RedisMetrics::new(),
            operation_seconds,
            operation_statements,
            names: Mutex::new(HashSet::new()),
            registry,
        }
    }

    pub fn sql_statements(&self) -> u64 {
        self.sql_statements.get()
    }

    /// Counts a statement, in the totals and in the running operation's own count.
    pub fn statement(&self, failed: bool) {
        self.sql_statements.inc();
        if failed {
            self.sql_failures.inc();
        }
        let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
    }

    /// Runs one operation's execution with its own statement count; returns what it answered
    /// and how many statements it ran.
    pub async fn counting<F: Future>(fut: F) -> (F::Output, u64) {
        let count = Arc::new(AtomicU64::new(0));
        let out = STATEMENTS.scope(count.clone(), fut).await;
        (out, count.load(Ordering::Relaxed))
    }

    /// Records one answered operation in the per-operation histograms.
    pub fn observe_operation(&self, name: Option<&str>, elapsed: Duration, statements: u64) {
        let label = self.label(name.unwrap_or("anonymous"));
        self.operation_seconds.with_label_values(&[label.as_str()]).observe(elapsed.as_secs_f64());
        #[allow(clippy::cast_precision_loss)] // statement counts are small
        self.operation_statements.with_label_values(&[label.as_str()]).observe(statements as f64);
    }

    fn label(&self, name: &str) -> String {
        let clean: String =
            name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>();
        let clean = if clean.is_empty() { "anonymous".to_owned() } else { clean };
        let Ok(mut names) = self.names.lock() else { return "other".to_owned() };
        if names.contains(&clean) {
            return clean;
        }
        if names.len() >= MAX_OPERATION_NAMES {
            return "other".to_owned();
        }
        names.insert(clean.clone());
        clean
    }

    /// The registry in Prometheus's text format, with the Redis tier's health when there is one.
    pub fn render(&self, redis: Option<&RedisHealth>) -> String {
        self.transient_retries.set(crate::service::transient_retries());
        let mut families = self.registry.gather();
        if let Some(health) = redis {
            families.extend(self.redis.gather(health));
        }
        let mut out = Vec::new();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A counter that mirrors a total kept elsewhere (the service layer's retries, the Redis
/// client's counters): set to the total when rendered.
struct Mirror(Mutex<IntCounter>);

impl Mirror {
    fn set(&self, total: u64) {
        if let Ok(counter) = self.0.lock() {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}

struct RedisMetrics {
    registry: Registry,
    timeouts: Mirror,
    errors: Mirror,
    slow: Mirror,
    skipped: Mirror,
    circuit_opened: Mirror,
    circuit_open: IntGauge,
    pending_invalidations: IntGauge,
    near_hits: Mirror,
}

impl RedisMetrics {
    fn new() -> Self {
        let registry = Registry::new();
        let mirror = |name: &str, help: &str| Mirror(Mutex::new(counter(&registry, name, help)));
        Self {
            timeouts: mirror("incubase_redis_timeouts_total", "Redis calls that waited until the timeout"),
            errors: mirror("incubase_redis_errors_total", "Redis calls that failed with an error"),
            slow: mirror("incubase_redis_slow_replies_total", "Redis calls answered slowly"),
            skipped: mirror("incubase_redis_skipped_total", "Redis calls not made (breaker open or too many waiting)"),
            circuit_opened: mirror("incubase_redis_circuit_opened_total", "Times the Redis breaker opened"),
            circuit_open: gauge(&registry, "incubase_redis_circuit_open", "1 while the Redis breaker is open"),
            pending_invalidations: gauge(
                &registry,
                "incubase_cache_pending_invalidations",
                "Invalidations waiting for Redis to come back",
            ),
            near_hits: mirror(
                "incubase_cache_near_hits_total",
                "Cached reads served from this instance's copy of Redis entries, without a round trip",
            ),
            registry,
        }
    }

    fn gather(&self, h: &RedisHealth) -> Vec<prometheus::proto::MetricFamily> {
        self.timeouts.set(h.timeouts);
        self.errors.set(h.errors);
        self.slow.set(h.slow);
        self.skipped.set(h.skipped);
        self.circuit_opened.set(h.circuit_opened);
        self.circuit_open.set(i64::from(h.circuit_open));
        self.pending_invalidations.set(i64::try_from(h.pending_invalidations).unwrap_or(i64::MAX));
        self.near_hits.set(h.near_hits);
        self.registry.gather()
    }
}

/// The spawner of DataLoader batches: a batch runs in its own task, and counts its statements
/// for the operation that asked for it.
pub fn spawn_counted(fut: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(counted_for(operation_count(), fut))
}

/// The running operation's statement count, for work done for it in another task.
pub fn operation_count() -> Option<OperationCount> {
    STATEMENTS.try_with(Arc::clone).ok().map(OperationCount)
}

/// One operation's statement count, carried to the task that works for it.
#[derive(Clone, Debug)]
pub struct OperationCount(Arc<AtomicU64>);

/// Runs `fut` with its statements counted for the operation `count` belongs to (none: only
/// in the totals).
pub async fn counted_for<F: Future>(count: Option<OperationCount>, fut: F) -> F::Output {
    match count {
        Some(OperationCount(count)) => STATEMENTS.scope(count, fut).await,
        None => fut.await,
    }
}
