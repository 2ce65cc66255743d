//! `onelaunch server backup` and `onelaunch server restore` (docs/backup.md).
//! Neither prints the secret key or a token; PostgreSQL URLs lose their
//! password in the commands printed.

use anyhow::{Context, Result};

use crate::cli::{ServerAction, ServerData};
use crate::exit;

fn config_of(d: ServerData) -> (onelaunch_server::ServerConfig, bool) {
    (
        onelaunch_server::ServerConfig {
            data_dir: d.data,
            database_url: d.database_url,
            secret_key_file: d.secret_key_file,
            ..Default::default()
        },
        d.force,
    )
}

fn print_counts(c: &onelaunch_server::Counts) {
    println!("launches: {}", c.launches);
    println!("test results: {}", c.test_results);
    println!("attachments: {}", c.attachments);
    println!("stored credentials: {}", c.stored_credentials);
}

pub(crate) async fn run(action: ServerAction) -> Result<u8> {
    match action {
        ServerAction::Backup { to, data } => {
            let (config, force) = config_of(data);
            let report = onelaunch_server::backup(&config, &to, force)
                .await
                .context("backup failed")?;
            let m = &report.manifest;
            println!("Backed up to {} ({} database)", to.display(), m.database);
            print_counts(&m.counts);
            println!("blob files: {} ({} bytes)", m.blobs, m.blob_bytes);
            println!(
                "secret key: {}",
                if m.secret_key_sha256.is_some() {
                    "copied"
                } else {
                    "none (the server has none yet)"
                }
            );
            if !m.missing_blobs.is_empty() {
                eprintln!(
                    "warning: {} attachments' bytes were missing or damaged in the data directory \
                     (listed in manifest.json as missingBlobs)",
                    m.missing_blobs.len()
                );
            }
            if let Some(commands) = &report.postgres_commands {
                print!("{commands}");
            }
            Ok(exit::OK)
        }
        ServerAction::Restore { from, data } => {
            let (config, force) = config_of(data);
            let data_dir = config.data_dir.clone();
            let report = onelaunch_server::restore(&config, &from, force)
                .await
                .context("restore failed")?;
            println!(
                "Restored the backup of {} into {}",
                report.manifest.created_at,
                data_dir.display()
            );
            print_counts(report.counts.as_ref().unwrap_or(&report.manifest.counts));
            println!("blob files: {}", report.manifest.blobs);
            if let Some(commands) = &report.postgres_commands {
                print!("{commands}");
            }
            Ok(exit::OK)
        }
        _ => Ok(exit::ERROR),
    }
}
