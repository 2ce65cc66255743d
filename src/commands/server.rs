//! `onelaunch server` (serve until SIGINT/SIGTERM), `onelaunch server
//! migrate` (copy a SQLite database into PostgreSQL) and `onelaunch server gc`
//! (orphaned blob files).

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{Global, ServerAction, ServerArgs};
use crate::exit;

mod backup;

pub(crate) async fn run(g: &Global, args: ServerArgs) -> Result<u8> {
    if let Some(ServerAction::Migrate { from, to }) = args.action {
        let report = onelaunch_server::migrate::copy_database(&from, &to)
            .await
            .context("migration failed")?;
        for (table, rows) in &report.tables {
            println!("{table}: {rows} rows");
        }
        println!(
            "Copied every table; start the servers with --database-url pointing at the target."
        );
        return Ok(exit::OK);
    }
    if let Some(ServerAction::Gc {
        data,
        database_url,
        dry_run,
    }) = args.action
    {
        return gc(data, database_url, dry_run).await;
    }
    if let Some(ServerAction::AdminToken {
        data,
        database_url,
        name,
    }) = args.action
    {
        let config = onelaunch_server::ServerConfig {
            data_dir: data,
            database_url,
            ..Default::default()
        };
        let token = onelaunch_server::create_admin_token(&config, &name)
            .await
            .context("cannot create an admin token")?;
        eprintln!("New admin token {name:?} (shown once; store it now):");
        // The one place this token is printed, on purpose: it is shown once.
        println!("{token}");
        return Ok(exit::OK);
    }
    if let Some(ServerAction::Backup { .. } | ServerAction::Restore { .. }) = &args.action {
        return backup::run(args.action.expect("an action")).await;
    }
    let config = onelaunch_server::ServerConfig {
        listen: args.listen,
        data_dir: args.data,
        database_url: args.database_url,
        public_url: args.public_url,
        init_token: args.init_token,
        launch_idle_close: args.launch_idle_close,
        upload_session_timeout: args.upload_session_timeout,
        storage: onelaunch_server::StorageConfig {
            min_free_space: args.min_free_space,
            retry_after: args.storage_full_retry_after,
        },
        secret_key_file: args.secret_key_file,
        allow_integration_hosts: args.allow_integration_hosts,
        max_connections: args.max_connections,
        header_timeout: args.header_timeout,
        auth_throttle: onelaunch_server::ThrottleConfig {
            max_failures: args.auth_max_failures,
            window: args.auth_failure_window,
            trust_forwarded_for: args.trust_forwarded_for,
        },
        // The global `--ca-cert` (or ALLURE_CA_CERT), else ONELAUNCH_CA_CERT:
        // what the integrations' HTTPS requests trust besides the system store.
        ca_cert: g
            .ca_cert
            .clone()
            .or_else(|| std::env::var_os("ONELAUNCH_CA_CERT").map(Into::into)),
        forget_stored_credentials: args.forget_stored_credentials,
        metrics_require_admin: args.metrics_require_admin,
        retention_interval: Some(args.retention_interval),
    };
    let server = onelaunch_server::Server::start(&config)
        .await
        .context("cannot start the server")?;
    println!("onelaunch server listening on http://{}", server.addr);
    println!("public URL {}", server.public_url);
    if let Some(token) = &server.generated_token {
        println!("Admin API token (shown once; store it now): {token}");
    }
    let _ = std::io::stdout().flush();
    server.serve(shutdown_signal()).await?;
    Ok(exit::OK)
}

/// `server gc [--dry-run]`: orphaned blob files and stale temporary files.
async fn gc(data: std::path::PathBuf, database_url: Option<String>, dry_run: bool) -> Result<u8> {
    let config = onelaunch_server::ServerConfig {
        data_dir: data,
        database_url,
        ..Default::default()
    };
    let r = onelaunch_server::gc(&config, dry_run)
        .await
        .context("garbage collection failed")?;
    let verb = if dry_run { "would remove" } else { "removing" };
    for (sha, len) in &r.orphans {
        println!("orphan blob {sha} ({len} bytes): {verb}");
    }
    for (path, len) in &r.stale_tmp {
        println!(
            "stale temporary file {} ({len} bytes): {verb}",
            path.display()
        );
    }
    for sha in &r.missing {
        println!("missing blob {sha}: rows reference it but its bytes are gone");
    }
    let found: u64 = r.orphans.iter().map(|(_, l)| l).sum::<u64>()
        + r.stale_tmp.iter().map(|(_, l)| l).sum::<u64>();
    println!(
        "{} orphan blob(s), {} stale temporary file(s), {found} bytes; {} referenced blob(s) kept; \
         {} orphan(s) younger than the grace period left alone",
        r.orphans.len(),
        r.stale_tmp.len(),
        r.referenced,
        r.young_orphans
    );
    if dry_run {
        println!("dry run: nothing removed");
    } else {
        println!(
            "removed {} blob(s) and temporary file(s), {} bytes freed",
            r.removed, r.bytes_freed
        );
    }
    Ok(exit::OK)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
