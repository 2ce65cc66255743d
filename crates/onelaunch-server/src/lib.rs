//! The onelaunch server: the Allure TestOps HTTP API subset over SQLite (the
//! embedded default) or PostgreSQL.
//!
//! [`Server::start`] binds, migrates, bootstraps and serves; tests start it on
//! `127.0.0.1:0`. See `ARCHITECTURE.md` for how a result flows through it.

pub mod auth;
pub mod blobs;
pub mod db;
pub mod error;
pub mod migrate;
mod pages;
pub mod routes;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use error::{ServerError, ServerResult};

/// Largest request body accepted (multipart attachment uploads included).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Shared state of all handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: db::Db,
    pub blobs: blobs::BlobStore,
    /// Base URL used in links (`<public_url>/launch/<id>`), no trailing slash.
    pub public_url: String,
}

/// Server settings. `Debug` never shows the init token or a database password.
#[derive(Clone, Default)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub init_token: Option<String>,
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

/// Builds the router (all API routes under `/api` and `/api/rs`).
pub fn app(state: AppState) -> Router {
    let api = routes::api_router();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(pages::home))
        .route("/launch/{id}", get(pages::launch))
        .route("/jobrun/{id}", get(pages::job_run))
        .nest("/api/rs", api.clone())
        .nest("/api", api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
}

impl Server {
    /// Binds the listener, connects to the database, runs migrations and
    /// bootstraps project 1 and the admin token.
    pub async fn start(config: &ServerConfig) -> ServerResult<Server> {
        std::fs::create_dir_all(&config.data_dir)?;
        let db = db::Db::connect(&config.effective_database_url()).await?;
        let generated_token = store::bootstrap(&db, config.init_token.as_deref()).await?;
        let blobs = blobs::BlobStore::new(config.data_dir.join("blobs"))?;
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
        Ok(Server {
            addr,
            public_url: public_url.clone(),
            generated_token,
            listener,
            state: AppState {
                db,
                blobs,
                public_url,
            },
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> ServerResult<()> {
        axum::serve(self.listener, app(self.state))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
