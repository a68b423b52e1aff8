//! The cache's Redis connection: one server (`redis://…`, `rediss://…`), or whichever server
//! Redis Sentinel names the master of a service (`redis+sentinel://…`):
//!
//! ```text
//! redis+sentinel://[[user]:password@]sentinel-1:26379[,sentinel-2:26379…]/<master name>[/<db>]
//! ```
//!
//! The user and password are the master's (sentinels are asked without them). With Sentinel
//! the master is looked up on first use and again after any call fails as a master that is
//! gone or demoted would make it fail (connection refused or dropped, a timeout, `READONLY`):
//! after a failover the next calls find the new master by themselves.
use std::sync::{Arc, Mutex};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// Where the cache's Redis is, as `REDIS_URL` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    Server(String),
    Sentinel { nodes: Vec<String>, master: String, username: Option<String>, password: Option<String>, db: i64 },
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("redis+sentinel://") else {
            if url.starts_with("redis://") || url.starts_with("rediss://") {
                return Ok(Self::Server(url.to_owned()));
            }
            return Err("expected redis://…, rediss://… or redis+sentinel://…".into());
        };
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (Some(credentials), rest),
            None => (None, rest),
        };
        let (username, password) = match credentials.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((user, password)) => (Some(user).filter(|u| !u.is_empty()), Some(password).filter(|p| !p.is_empty())),
            None => (None, None),
        };
        let (hosts, path) = rest.split_once('/').ok_or("name the master: redis+sentinel://host:26379/<master>")?;
        let nodes: Vec<String> =
            hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| format!("redis://{h}")).collect();
        if nodes.is_empty() {
            return Err("name at least one sentinel: redis+sentinel://host:26379/<master>".into());
        }
        let (master, db) = match path.split_once('/') {
            Some((master, db)) => (master, db.parse::<i64>().map_err(|_| format!("{db:?} is not a database number"))?),
            None => (path, 0),
        };
        if master.is_empty() {
            return Err("name the master: redis+sentinel://host:26379/<master>".into());
        }
        for node in &nodes {
            redis::Client::open(node.as_str()).map_err(|e| format!("sentinel {node}: {e}"))?;
        }
        Ok(Self::Sentinel {
            nodes,
            master: master.to_owned(),
            username: username.map(str::to_owned),
            password: password.map(str::to_owned),
            db,
        })
    }
}

/// A reconnecting multiplexed connection to the cache's Redis (cheap to clone).
#[derive(Clone)]
pub struct RedisConn(Kind);

#[derive(Clone)]
enum Kind {
    Server { conn: ConnectionManager, client: redis::Client },
    Sentinel(Arc<SentinelMaster>),
}

struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<ConnectionManager>>,
    config: ConnectionManagerConfig,
}

impl RedisConn {
    /// Connects lazily: nothing is dialled until the first command.
    pub fn new(target: &RedisTarget, config: ConnectionManagerConfig) -> RedisResult<Self> {
        match target {
            RedisTarget::Server(url) => {
                let client = redis::Client::open(url.as_str())?;
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
                Ok(Self(Kind::Server { conn, client }))
            }
            RedisTarget::Sentinel { nodes, master, username, password, db } => {
                let mut info = redis::RedisConnectionInfo::default().set_db(*db);
                if let Some(username) = username {
                    info = info.set_username(username);
                }
                if let Some(password) = password {
                    info = info.set_password(password);
                }
                let node_info = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
                let sentinel = SentinelClient::build(
                    nodes.iter().map(String::as_str).collect(),
                    master.clone(),
                    Some(node_info),
                    SentinelServerType::Master,
                )?;
                Ok(Self(Kind::Sentinel(Arc::new(SentinelMaster {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    current: Mutex::new(None),
                    config,
                }))))
            }
        }
    }

    /// A client of the current master, for a pub/sub connection of its own.
    pub async fn client(&self) -> RedisResult<redis::Client> {
        match &self.0 {
            Kind::Server { client, .. } => Ok(client.clone()),
            Kind::Sentinel(master) => master.sentinel.lock().await.async_get_client().await,
        }
    }
}

impl SentinelMaster {
    async fn master(&self) -> RedisResult<ConnectionManager> {
        if let Some(conn) = lock(&self.current).clone() {
            return Ok(conn);
        }
        let client = self.sentinel.lock().await.async_get_client().await?;
        tracing::info!(master = ?client.get_connection_info().addr(), "redis master found through Sentinel");
        let conn = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        *lock(&self.current) = Some(conn.clone());
        Ok(conn)
    }

    /// After a failure a failover would explain, the next call asks the sentinels again.
    fn saw<T>(&self, result: &RedisResult<T>) {
        if let Err(e) = result
            && master_may_have_moved(e)
        {
            self.forget();
        }
    }

    fn forget(&self) {
        lock(&self.current).take();
    }
}

/// A call given up by its caller (the cache's own timeout) counts as a failure too: a master
/// that stopped answering looks exactly like that.
struct UnlessAnswered<'a> {
    master: &'a SentinelMaster,
    answered: bool,
}

impl Drop for UnlessAnswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.master.forget();
        }
    }
}

fn master_may_have_moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.code() == Some("READONLY")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Kind::Server { conn, .. } => conn.req_packed_command(cmd),
            Kind::Sentinel(master) => Box::pin(async move {
                let mut guard = UnlessAnswered { master, answered: false };
                let mut conn = master.master().await?;
                let result = conn.req_packed_command(cmd).await;
                guard.answered = true;
                master.saw(&result);
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Kind::Server { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
            Kind::Sentinel(master) => Box::pin(async move {
                let mut guard = UnlessAnswered { master, answered: false };
                let mut conn = master.master().await?;
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                guard.answered = true;
                master.saw(&result);
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Kind::Server { conn, .. } => conn.get_db(),
            Kind::Sentinel(master) => lock(&master.current).as_ref().map_or(0, ConnectionLike::get_db),
        }
    }
}
