//! Backups and restores (`onelaunch server backup|restore`), and the start-up
//! check that the secret key is the one the stored credentials were sealed
//! with ([`load_key`]).
//!
//! A backup directory holds `manifest.json` (written last: a directory without
//! it is incomplete), `secret.key`, `blobs/<aa>/<sha256>` and, on SQLite,
//! `onelaunch.db`: a consistent copy taken with `VACUUM INTO` while the server
//! runs. On PostgreSQL the database is dumped with `pg_dump`; the backup
//! writes the exact commands to `POSTGRES.txt`. The key and tokens are never
//! printed: the manifest holds only hashes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{self, backup as sql, Db};
use crate::error::{ServerError, ServerResult};
use crate::secrets::SecretKey;
use crate::ServerConfig;

/// The manifest's format version.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DB_FILE: &str = "onelaunch.db";
const KEY_FILE: &str = "secret.key";
const PG_DUMP_FILE: &str = "database.pgdump";
const PG_NOTES: &str = "POSTGRES.txt";

/// Rows a backup holds (and a restore put back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub launches: i64,
    pub test_results: i64,
    pub attachments: i64,
    pub stored_credentials: i64,
}

/// `manifest.json` of a backup directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    /// The onelaunch version that wrote it.
    pub version: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The migrations applied to the database backed up.
    pub migrations: Vec<i64>,
    pub counts: Counts,
    /// SHA-256 of `onelaunch.db` (SQLite only).
    pub database_sha256: Option<String>,
    /// SHA-256 of `secret.key` (absent when the server never had a key).
    pub secret_key_sha256: Option<String>,
    /// Blob files copied, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blobs rows point at that were not on disk (or damaged) when copied.
    pub missing_blobs: Vec<String>,
}

/// What `server backup` did.
#[derive(Debug)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// The commands that dump (and later restore) a PostgreSQL database.
    pub postgres_commands: Option<String>,
}

/// What `server restore` did.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    /// What the restored SQLite database holds (after migrating it).
    pub counts: Option<Counts>,
    /// The command that restores a PostgreSQL database.
    pub postgres_commands: Option<String>,
}

fn config_err(msg: String) -> ServerError {
    ServerError::Config(msg)
}

fn key_path(config: &ServerConfig) -> PathBuf {
    config
        .secret_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join(KEY_FILE))
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file of a `sqlite://path?…` URL.
fn sqlite_file(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// A PostgreSQL URL without its password, for commands a person runs (they
/// give it through `PGPASSWORD` or `~/.pgpass`).
fn url_without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => db::redact_url(url),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Entries of a directory, ignoring the data directory's lock file.
fn has_entries(dir: &Path) -> ServerResult<bool> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                if e?.file_name() != "onelaunch.lock" {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn sha256_file(path: &Path) -> ServerResult<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies a file, hashing what is read; written to a temporary name, synced,
/// then renamed. Returns (sha256, bytes).
fn copy_hashed(from: &Path, to: &Path, mode: Option<u32>) -> ServerResult<(String, u64)> {
    let tmp = to.with_extension("copying");
    let mut src = std::fs::File::open(from)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut dst = opts.open(&tmp)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
        len += n as u64;
    }
    dst.sync_all()?;
    drop(dst);
    std::fs::rename(&tmp, to)?;
    Ok((hex::encode(h.finalize()), len))
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Copies the blob files `<from>/<aa>/<sha256>` (temporary files skipped),
/// checking each one's bytes against its name. Returns (copied, bytes, damaged).
/// `to` is made even when there is nothing to copy (every blob small enough
/// to live in the database): a backup always has the same layout.
fn copy_blobs(from: &Path, to: &Path) -> ServerResult<(u64, u64, Vec<String>)> {
    let (mut n, mut bytes, mut damaged) = (0u64, 0u64, Vec::new());
    std::fs::create_dir_all(to)?;
    let Ok(dirs) = std::fs::read_dir(from) else {
        return Ok((0, 0, damaged));
    };
    for d in dirs {
        let d = d?;
        let prefix = d.file_name().to_string_lossy().into_owned();
        if !d.file_type()?.is_dir() || prefix.len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(d.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if !f.file_type()?.is_file() || !valid_sha(&name) || !name.starts_with(&prefix) {
                continue;
            }
            std::fs::create_dir_all(to.join(&prefix))?;
            let dest = to.join(&prefix).join(&name);
            let (sha, len) = copy_hashed(&f.path(), &dest, None)?;
            if sha != name {
                std::fs::remove_file(&dest)?;
                damaged.push(name);
                continue;
            }
            n += 1;
            bytes += len;
        }
    }
    Ok((n, bytes, damaged))
}

fn counts_of(c: &sql::Contents) -> Counts {
    Counts {
        launches: c.launches,
        test_results: c.test_results,
        attachments: c.attachments,
        stored_credentials: c.stored_credentials,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn pg_dump_command(url: &str, to: &Path) -> String {
    format!(
        "pg_dump --format=custom --no-owner --no-privileges --file {} {}",
        shell_quote(&to.join(PG_DUMP_FILE).display().to_string()),
        shell_quote(&url_without_password(url))
    )
}

fn pg_restore_command(url: &str, from: &Path) -> String {
    format!(
        "pg_restore --no-owner --no-privileges --exit-on-error --dbname {} {}",
        shell_quote(&url_without_password(url)),
        shell_quote(&from.join(PG_DUMP_FILE).display().to_string())
    )
}

/// Backs up a server's data to `to` (refused when not empty unless `force`),
/// while the server runs.
pub async fn backup(config: &ServerConfig, to: &Path, force: bool) -> ServerResult<BackupReport> {
    if has_entries(to)? {
        if !force {
            return Err(config_err(format!(
                "backup directory {} is not empty: choose a new one or pass --force to replace its contents",
                to.display()
            )));
        }
        for name in [MANIFEST, DB_FILE, KEY_FILE, PG_NOTES] {
            let _ = std::fs::remove_file(to.join(name));
        }
        let _ = std::fs::remove_dir_all(to.join("blobs"));
    }
    std::fs::create_dir_all(to)?;
    let url = config.effective_database_url();
    if is_sqlite(&url) && !sqlite_file(&url).exists() {
        return Err(config_err(format!(
            "no database at {}: is --data (or --database-url) the server's?",
            sqlite_file(&url).display()
        )));
    }
    let pool = sql::open_plain(&url.replace("mode=rwc", "mode=rw")).await?;
    let sqlite = is_sqlite(&url);
    // The database first: every blob its rows point at is on disk before the
    // row is written, so blobs copied afterwards cover the copy.
    let (contents, database_sha256) = if sqlite {
        let dest = to.join(DB_FILE);
        sql::sqlite_snapshot(&pool, &dest.display().to_string()).await?;
        pool.close().await;
        let copy = sql::open_plain(&format!("sqlite://{}?mode=ro", dest.display())).await?;
        let contents = sql::contents(&copy).await?;
        copy.close().await;
        (contents, Some(sha256_file(&dest)?))
    } else {
        let contents = sql::contents(&pool).await?;
        pool.close().await;
        (contents, None)
    };
    let key_file = key_path(config);
    let secret_key_sha256 = if key_file.exists() {
        let (sha, _) = copy_hashed(&key_file, &to.join(KEY_FILE), Some(0o600))?;
        Some(sha)
    } else if contents.stored_credentials > 0 {
        return Err(config_err(format!(
            "the secret key file {} is missing but {} credentials are stored: a backup without \
             their key could not use them (--secret-key-file names the key file)",
            key_file.display(),
            contents.stored_credentials
        )));
    } else {
        None
    };
    let (blobs, blob_bytes, damaged) =
        copy_blobs(&config.data_dir.join("blobs"), &to.join("blobs"))?;
    let missing_blobs: Vec<String> = contents
        .referenced_blobs
        .iter()
        .filter(|sha| {
            damaged.contains(sha)
                || !to
                    .join("blobs")
                    .join(&sha[..2.min(sha.len())])
                    .join(sha)
                    .exists()
        })
        .cloned()
        .collect();
    let postgres_commands = (!sqlite).then(|| {
        format!(
            "# The PostgreSQL database is not in this directory: dump it with\n{}\n\
             # (the password through PGPASSWORD or ~/.pgpass). Dump right after this backup: attachments\n\
             # uploaded in between are not in blobs/. To restore, into a new empty database:\n\
             # onelaunch server restore --from <this directory> --data <data dir> --database-url <URL>\n\
             # which prints the pg_restore command, e.g.\n{}\n",
            pg_dump_command(&url, to),
            pg_restore_command(&url, to)
        )
    });
    if let Some(text) = &postgres_commands {
        std::fs::write(to.join(PG_NOTES), text)?;
    }
    let manifest = Manifest {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: rfc3339(db::now_ms() / 1000),
        database: if sqlite { "sqlite" } else { "postgres" }.to_string(),
        migrations: contents.migrations.clone(),
        counts: counts_of(&contents),
        database_sha256,
        secret_key_sha256,
        blobs,
        blob_bytes,
        missing_blobs,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| config_err(format!("manifest: {e}")))?;
    let tmp = to.join("manifest.json.tmp");
    std::fs::write(&tmp, text + "\n")?;
    std::fs::rename(&tmp, to.join(MANIFEST))?;
    Ok(BackupReport {
        manifest,
        postgres_commands,
    })
}

/// Reads and checks a backup directory's manifest and files.
fn verified_manifest(from: &Path) -> ServerResult<Manifest> {
    let text = std::fs::read_to_string(from.join(MANIFEST)).map_err(|e| {
        config_err(format!(
            "{}: {e} (not a complete backup directory: `onelaunch server backup` writes the manifest last)",
            from.join(MANIFEST).display()
        ))
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| config_err(format!("{}: {e}", from.join(MANIFEST).display())))?;
    if m.format != FORMAT {
        return Err(config_err(format!(
            "{}: format {} is not known to this version (expected {FORMAT})",
            from.join(MANIFEST).display(),
            m.format
        )));
    }
    let check = |name: &str, want: &Option<String>| -> ServerResult<()> {
        let Some(want) = want else { return Ok(()) };
        let got = sha256_file(&from.join(name))
            .map_err(|e| config_err(format!("{}: {e}", from.join(name).display())))?;
        if &got != want {
            return Err(config_err(format!(
                "{} does not match the manifest (sha256 {got}, expected {want}): the backup is damaged",
                from.join(name).display()
            )));
        }
        Ok(())
    };
    check(DB_FILE, &m.database_sha256)?;
    check(KEY_FILE, &m.secret_key_sha256)?;
    Ok(m)
}

/// Restores a backup into a server's data directory (refused when it is not
/// empty unless `force`); the server must be stopped (on SQLite the data
/// directory's lock is taken for the whole restore).
pub async fn restore(
    config: &ServerConfig,
    from: &Path,
    force: bool,
) -> ServerResult<RestoreReport> {
    let manifest = verified_manifest(from)?;
    let url = config.effective_database_url();
    let sqlite = is_sqlite(&url);
    if sqlite != (manifest.database == "sqlite") {
        return Err(config_err(format!(
            "the backup is of a {} database but the target is {}: pass the matching --database-url",
            manifest.database,
            if sqlite { "SQLite" } else { "PostgreSQL" }
        )));
    }
    let data = &config.data_dir;
    let key_file = key_path(config);
    let db_file = sqlite.then(|| sqlite_file(&url));
    let occupied = has_entries(data)? || db_file.as_deref().is_some_and(Path::exists);
    if occupied && !force {
        return Err(config_err(format!(
            "the data directory {} is not empty: restore into an empty one, or pass --force to replace \
             its database, attachments and key",
            data.display()
        )));
    }
    std::fs::create_dir_all(data)?;
    let _lock = if sqlite {
        Some(crate::lock_data_dir(data)?)
    } else {
        None
    };
    // The blobs are copied and checked beside the live ones first: a damaged
    // or incomplete backup leaves the data directory as it was.
    let blobs_dir = data.join("blobs");
    let staging = data.join("blobs.restoring");
    let _ = std::fs::remove_dir_all(&staging);
    let (blobs, _, damaged) = copy_blobs(&from.join("blobs"), &staging)?;
    if !damaged.is_empty() || blobs != manifest.blobs {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if !damaged.is_empty() {
        return Err(config_err(format!(
            "{} blob files of the backup do not match their sha256 (e.g. {}): the backup is damaged",
            damaged.len(),
            damaged[0]
        )));
    }
    if blobs != manifest.blobs {
        return Err(config_err(format!(
            "the backup holds {blobs} blob files, its manifest {}: the backup is incomplete",
            manifest.blobs
        )));
    }
    let _ = std::fs::remove_dir_all(&blobs_dir);
    if staging.exists() {
        std::fs::rename(&staging, &blobs_dir)?;
    } else {
        std::fs::create_dir_all(&blobs_dir)?;
    }
    if manifest.secret_key_sha256.is_some() {
        if let Some(dir) = key_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        copy_hashed(&from.join(KEY_FILE), &key_file, Some(0o600))?;
    }
    let Some(db_file) = db_file else {
        return Ok(RestoreReport {
            manifest,
            counts: None,
            postgres_commands: Some(format!(
                "# Restore the database into a new empty PostgreSQL database (the password through\n\
                 # PGPASSWORD or ~/.pgpass), then start the servers:\n{}\n",
                pg_restore_command(&url, from)
            )),
        });
    };
    for suffix in ["-wal", "-shm"] {
        let mut p = db_file.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    if let Some(dir) = db_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (sha, _) = copy_hashed(&from.join(DB_FILE), &db_file, Some(0o600))?;
    if Some(&sha) != manifest.database_sha256.as_ref() {
        return Err(config_err(format!(
            "{} changed while it was restored",
            from.join(DB_FILE).display()
        )));
    }
    // Open it as the server will: migrations of a newer version run now.
    let restored = Db::connect(&url).await?;
    let pool = restored.read.clone();
    let contents = sql::contents(&pool).await?;
    let fingerprint = sql::recorded_fingerprint(&pool).await;
    restored.read.close().await;
    restored.write.close().await;
    if let (Some(fp), Some(key)) = (fingerprint, SecretKey::load(&key_file)?) {
        if fp != key.fingerprint() {
            return Err(config_err(format!(
                "the restored key {} is not the key the restored database's credentials were sealed with",
                key_file.display()
            )));
        }
    }
    Ok(RestoreReport {
        manifest,
        counts: Some(counts_of(&contents)),
        postgres_commands: None,
    })
}

/// Loads the server's key at start and checks it against the database: when
/// credentials are stored sealed, the key file must exist and be the key they
/// were sealed with (its fingerprint in `server_meta`), else the server does
/// not start and says what to restore. `forget` clears the stored credentials
/// instead (they must then be set again). Without stored credentials a
/// missing key is created.
pub(crate) async fn load_key(db: &Db, key_file: &Path, forget: bool) -> ServerResult<SecretKey> {
    let (sealed, one) = sql::sealed_credentials(db).await?;
    let recorded = sql::key_fingerprint(db).await?;
    let existing = SecretKey::load(key_file)?;
    let problem = match (&existing, sealed) {
        (_, 0) => None,
        (None, _) => Some(format!(
            "the secret key file {} is missing",
            key_file.display()
        )),
        (Some(key), _) => match &recorded {
            Some(fp) if *fp != key.fingerprint() => Some(format!(
                "the secret key file {} is not the key they were sealed with",
                key_file.display()
            )),
            Some(_) => None,
            // From before fingerprints were kept: try the key on one.
            None => one.as_deref().and_then(|c| key.open(c).err()).map(|_| {
                format!(
                    "the secret key file {} cannot open them",
                    key_file.display()
                )
            }),
        },
    };
    if let Some(problem) = problem {
        if !forget {
            return Err(config_err(format!(
                "{sealed} job credentials are stored sealed with another key ({problem}); restore {} \
                 from the backup taken with this database (onelaunch server restore), or start once \
                 with --forget-stored-credentials to clear them (each job's credential must then be \
                 configured again)",
                key_file.display()
            )));
        }
        let n = sql::forget_sealed_credentials(db).await?;
        tracing::warn!(
            credentials = n,
            "--forget-stored-credentials: cleared the stored job credentials; configure them again"
        );
    }
    let key = match existing {
        Some(key) => key,
        None => SecretKey::load_or_create(key_file)?,
    };
    let fp = key.fingerprint();
    // No credentials, the right key, or they were just cleared: this key is
    // the one from now on.
    if recorded.as_deref() != Some(fp.as_str()) {
        sql::set_key_fingerprint(db, &fp).await?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_urls() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(
            url_without_password("postgres://app:s3cret@db:5432/onelaunch"),
            "postgres://app@db:5432/onelaunch"
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/onelaunch/onelaunch.db?mode=rwc"),
            PathBuf::from("/var/lib/onelaunch/onelaunch.db")
        );
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
