//! The onelaunch server: the Allure TestOps HTTP API subset over SQLite (the
//! embedded default) or PostgreSQL.
//!
//! [`Server::start`] binds, migrates, bootstraps and serves; tests start it on
//! `127.0.0.1:0`. See `ARCHITECTURE.md` for how a result flows through it.

mod access;
mod api;
mod backup;
mod blobs;
mod closing;
mod compare;
mod content;
mod db;
pub mod error;
#[doc(hidden)]
pub mod fuzz_targets;
mod gate;
mod ingest;
mod integrations;
mod lifecycle;
mod listen;
mod metrics;
mod observe;
mod redact;
mod secrets;
mod server_led;
#[cfg(test)]
mod tests;
mod throttle;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;

pub use backup::{backup, restore, BackupReport, Counts, Manifest, RestoreReport};
pub use db::migrate;
pub use error::{ServerError, ServerResult};
pub use lifecycle::GcReport;
pub use listen::{default_max_connections, DEFAULT_HEADER_TIMEOUT};
pub use throttle::ThrottleConfig;

/// Largest request body accepted (multipart attachment uploads); JSON bodies
/// are limited to `ingest::limits::MAX_JSON_BODY`.
pub const MAX_BODY_BYTES: usize = ingest::limits::MAX_MULTIPART_BODY;

/// Shared state of all handlers.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub db: db::Db,
    pub blobs: blobs::BlobStore,
    /// Room for result batches in decoded form (`ingest::limits::Room::decoding`).
    pub decoding: ingest::limits::Room,
    /// Room for JSON request bodies in memory (`ingest::limits::Room::json_bodies`).
    pub json_bodies: ingest::limits::Room,
    /// API requests in flight per sender (`ingest::limits::Requests`).
    pub requests: ingest::limits::Requests,
    /// Base URL used in links (`<public_url>/launch/<id>`), no trailing slash.
    pub public_url: String,
    /// Hosts a project token may point an integration at.
    pub allowed_hosts: integrations::AllowedHosts,
    /// Failed authentication attempts per client address.
    pub throttle: std::sync::Arc<throttle::AuthThrottle>,
    /// An open upload session silent for longer counts as abandoned.
    pub upload_session_timeout: std::time::Duration,
    /// What `/readyz` and `/metrics` look at besides the database.
    pub observe: observe::Observe,
}

/// Server settings. `Debug` never shows the init token or a database password.
#[derive(Clone, Default)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub init_token: Option<String>,
    /// Close launches without activity for longer than this (off when `None`).
    pub launch_idle_close: Option<std::time::Duration>,
    /// Key for credentials stored encrypted (default `<data>/secret.key`).
    pub secret_key_file: Option<PathBuf>,
    /// Hosts (names or IP addresses) a project token may set as an
    /// integration URL; other URLs need an admin token.
    pub allow_integration_hosts: Vec<String>,
    /// Open connections at most (default: [`default_max_connections`]).
    pub max_connections: Option<usize>,
    /// Time to send a request header (default [`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Option<std::time::Duration>,
    /// Failed authentication attempts per client address.
    pub auth_throttle: ThrottleConfig,
    /// An open upload session without activity for longer counts as
    /// abandoned: it no longer holds `launch close --wait` (default
    /// one hour).
    pub upload_session_timeout: Option<std::time::Duration>,
    /// A PEM file of CA certificates the integrations' HTTPS requests trust
    /// on top of the system's (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// `/metrics` answers only an admin token (`--metrics-require-admin`).
    pub metrics_require_admin: bool,
    /// Clear credentials sealed with a key this server does not have
    /// instead of refusing to start (`backup::load_key`).
    pub forget_stored_credentials: bool,
    /// A full disk: the free-space reserve and the `Retry-After` of
    /// `storage_full` answers (docs/disk-full.md).
    pub storage: StorageConfig,
    /// How often the retention task runs (default one hour; docs/lifecycle.md).
    pub retention_interval: Option<std::time::Duration>,
}

/// What the server does when its storage fills up.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageConfig {
    /// Bytes that must stay free in the attachment store for a body to be
    /// taken (default 64 MiB; 0 turns the reserve off).
    pub min_free_space: Option<u64>,
    /// `Retry-After` of a 503 `storage_full` answer (default 30 s).
    pub retry_after: Option<std::time::Duration>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(db::redact_url),
            )
            .field("public_url", &self.public_url)
            .field(
                "init_token",
                &self.init_token.as_ref().map(|_| "<redacted>"),
            )
            .field("launch_idle_close", &self.launch_idle_close)
            .field("allow_integration_hosts", &self.allow_integration_hosts)
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("auth_throttle", &self.auth_throttle)
            .field("upload_session_timeout", &self.upload_session_timeout)
            .field("ca_cert", &self.ca_cert)
            .field("storage", &self.storage)
            .field("metrics_require_admin", &self.metrics_require_admin)
            .field("retention_interval", &self.retention_interval)
            .finish()
    }
}

impl ServerConfig {
    /// The database URL: the explicit one, else `<data>/onelaunch.db`.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("onelaunch.db").display()
            ),
        }
    }
}

/// Builds the router: the API's route table (`api::router`) and the UI's
/// (`ui::router`), with the layers every request passes (the outermost: one
/// log line and metrics sample per request, `observe::requests`).
pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .merge(
            ui::router()
                .layer(axum::Extension(api::openapi::description()))
                .layer(axum::Extension(state.requests.clone())),
        )
        .merge(api::router())
        .layer(DefaultBodyLimit::max(ingest::limits::MAX_JSON_BODY))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(redact::request_span))
        .layer(axum::middleware::from_fn(observe::requests::track))
        .with_state(state)
}

/// Creates a new admin token in the server's database (migrating it first)
/// and returns its secret, to be shown once: how access is recovered when no
/// admin token works any more (`onelaunch server admin-token`).
pub async fn create_admin_token(config: &ServerConfig, name: &str) -> ServerResult<String> {
    std::fs::create_dir_all(&config.data_dir)?;
    let db = db::Db::connect(&config.effective_database_url()).await?;
    db::projects::recovery_admin_token(&db, name).await
}

/// `onelaunch server gc`: finds blob files no row references (and temporary
/// files older than an hour) in the server's data directory and removes them
/// unless `dry_run`. Safe while servers run (docs/lifecycle.md).
pub async fn gc(config: &ServerConfig, dry_run: bool) -> ServerResult<GcReport> {
    let sqlite = config.data_dir.join("onelaunch.db");
    if config.database_url.is_none() && !sqlite.exists() {
        return Err(ServerError::Config(format!(
            "no database at {} (--data names the server's data directory; \
             --database-url its PostgreSQL database)",
            sqlite.display()
        )));
    }
    let db = db::Db::connect(&config.effective_database_url()).await?;
    let blobs = blobs::BlobStore::existing(config.data_dir.join("blobs"));
    lifecycle::gc(&db, &blobs, dry_run).await
}

/// A started server.
pub struct Server {
    pub addr: SocketAddr,
    pub public_url: String,
    /// An admin token created on this first start (no token existed and none was
    /// given); the caller shows it once.
    pub generated_token: Option<String>,
    listener: TcpListener,
    state: AppState,
    launch_idle_close: Option<std::time::Duration>,
    retention_interval: std::time::Duration,
    limits: listen::Limits,
    /// Held while serving: no second server uses the same SQLite database.
    _data_lock: Option<std::fs::File>,
}

impl Server {
    /// Binds the listener, connects to the database, runs migrations and
    /// bootstraps project 1 and the admin token.
    pub async fn start(config: &ServerConfig) -> ServerResult<Server> {
        if let Some(t) = &config.init_token {
            db::projects::check_init_token(t)?;
        }
        let allowed_hosts = integrations::AllowedHosts::parse(&config.allow_integration_hosts)
            .map_err(ServerError::Config)?;
        integrations::trust(config.ca_cert.as_deref()).map_err(ServerError::Config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        let database_url = config.effective_database_url();
        // PostgreSQL replicas share a data directory (for blobs); the embedded
        // SQLite database belongs to one process.
        let data_lock = if database_url.starts_with("sqlite:") {
            Some(lock_data_dir(&config.data_dir)?)
        } else {
            None
        };
        let mut db = db::Db::connect(&database_url).await?;
        let key_file = config
            .secret_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("secret.key"));
        db.secret_key = Some(std::sync::Arc::new(
            backup::load_key(&db, &key_file, config.forget_stored_credentials).await?,
        ));
        let generated_token =
            crate::db::projects::bootstrap(&db, config.init_token.as_deref()).await?;
        let mut blobs = blobs::BlobStore::new(config.data_dir.join("blobs"))?;
        blobs.min_free = (config.storage.min_free_space).unwrap_or(blobs::DEFAULT_MIN_FREE);
        error::set_storage_retry_after(config.storage.retry_after.unwrap_or(
            std::time::Duration::from_secs(error::DEFAULT_STORAGE_RETRY_AFTER),
        ));
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| ServerError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let max_connections = config
            .max_connections
            .unwrap_or_else(default_max_connections)
            .max(1);
        Ok(Server {
            addr,
            public_url: public_url.clone(),
            generated_token,
            listener,
            launch_idle_close: config.launch_idle_close,
            retention_interval: config
                .retention_interval
                .unwrap_or(std::time::Duration::from_secs(3600))
                .max(std::time::Duration::from_millis(100)),
            limits: listen::Limits {
                max_connections,
                header_timeout: config
                    .header_timeout
                    .unwrap_or(DEFAULT_HEADER_TIMEOUT)
                    .max(std::time::Duration::from_millis(100)),
            },
            _data_lock: data_lock,
            state: AppState {
                db,
                blobs,
                decoding: ingest::limits::Room::decoding(blobs::INTAKE_WAIT),
                json_bodies: ingest::limits::Room::json_bodies(blobs::INTAKE_WAIT),
                requests: ingest::limits::Requests::new(max_connections),
                public_url,
                allowed_hosts,
                throttle: std::sync::Arc::new(throttle::AuthThrottle::new(config.auth_throttle)),
                upload_session_timeout: config
                    .upload_session_timeout
                    .unwrap_or(closing::DEFAULT_UPLOAD_SESSION_TIMEOUT),
                observe: observe::Observe {
                    blobs_dir: config.data_dir.join("blobs"),
                    metrics_require_admin: config.metrics_require_admin,
                },
            },
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> ServerResult<()> {
        let idle_closer = self
            .launch_idle_close
            .map(|idle| closing::spawn_idle_closer(self.state.db.clone(), idle));
        let metrics_upkeep = tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tick.tick().await;
                metrics::upkeep();
            }
        });
        let settler = db::settle::spawn(self.state.db.clone());
        let retention = lifecycle::spawn_retention(
            self.state.db.clone(),
            self.state.blobs.clone(),
            self.retention_interval,
            self.state.upload_session_timeout,
        );
        tracing::info!(
            max_connections = self.limits.max_connections,
            header_timeout = ?self.limits.header_timeout,
            "accepting connections"
        );
        let served = listen::serve(self.listener, app(self.state), self.limits, async move {
            shutdown.await;
            // Open live pages hold their connection: end them first.
            ui::shutting_down();
        })
        .await;
        if let Some(task) = idle_closer {
            task.abort();
        }
        metrics_upkeep.abort();
        settler.abort();
        retention.abort();
        served?;
        Ok(())
    }
}

/// Locks `<data>/onelaunch.lock` for this process (released when it exits,
/// however it exits) and writes our process id into it; refuses when another
/// process still holds it after two seconds.
#[cfg(unix)]
fn lock_data_dir(dir: &std::path::Path) -> ServerResult<std::fs::File> {
    use rustix::fs::{flock, FlockOperation};
    use std::io::{Read, Seek, Write};
    let path = dir.join("onelaunch.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // A server that is just exiting (a restart) lets go within moments: wait
    // up to two seconds for the lock before refusing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut locked = flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok();
    while !locked && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        locked = flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok();
    }
    if !locked {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() {
            "another process".to_string()
        } else {
            format!("another onelaunch server (process {holder})")
        };
        return Err(ServerError::Config(format!(
            "the data directory {} is in use by {who} (lock file {}); \
             a SQLite database serves one server only: stop the other server or use another --data",
            dir.display(),
            path.display()
        )));
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

#[cfg(not(unix))]
fn lock_data_dir(dir: &std::path::Path) -> ServerResult<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("onelaunch.lock"))?)
}
