//! Copies a SQLite database into PostgreSQL (`onelaunch server migrate`), so a
//! team can move to replicas without losing history. Ids are preserved and
//! sequences moved past them; attachment bytes in files stay in the data
//! directory the replicas share, the rows that point at them are copied with
//! their hashes, and small blobs (rows of `small_blobs`) are copied as bytes.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use crate::db::{redact_url, Backend, Db};
use crate::error::{ServerError, ServerResult};

/// Rows copied per table, and whether source and target agree afterwards.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: BTreeMap<String, i64>,
}

const CHUNK: i64 = 1000;

/// Tables only SQLite has, derived from others and not copied: the web UI's
/// order of results, a view of `test_results` on PostgreSQL
/// ([`super::ui_order`]).
const SQLITE_ONLY: [&str; 2] = ["ui_results", "ui_results_mark"];

/// Tables of the SQLite source in an order where every table comes after the
/// tables it references.
async fn tables_in_dependency_order(src: &Db) -> ServerResult<Vec<String>> {
    let mut names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&src.read)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("name"))
    .collect::<Result<_, _>>()?;
    names.retain(|n| !SQLITE_ONLY.contains(&n.as_str()));
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &names {
        let refs = sqlx::query(&format!(
            "SELECT \"table\" AS parent FROM pragma_foreign_key_list('{t}')"
        ))
        .fetch_all(&src.read)
        .await?;
        let set = refs
            .iter()
            .filter_map(|r| r.try_get::<String, _>("parent").ok())
            .filter(|p| p != t)
            .collect();
        deps.insert(t.clone(), set);
    }
    let mut order = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    while order.len() < names.len() {
        let before = order.len();
        for t in &names {
            if !done.contains(t) && deps[t].iter().all(|d| done.contains(d)) {
                done.insert(t.clone());
                order.push(t.clone());
            }
        }
        if order.len() == before {
            return Err(ServerError::Config("foreign keys form a cycle".into()));
        }
    }
    Ok(order)
}

/// How a column's values are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
    /// Bytes (`BLOB` in SQLite, `BYTEA` in PostgreSQL): small blobs.
    Bytes,
}

/// (column name, kind) of a SQLite table.
async fn columns(src: &Db, table: &str) -> ServerResult<Vec<(String, Kind)>> {
    let rows = sqlx::query(&format!(
        "SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"
    ))
    .fetch_all(&src.read)
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name")?;
            let ty: String = r.try_get("type")?;
            let ty = ty.to_ascii_uppercase();
            let kind = if ty.contains("INT") {
                Kind::Integer
            } else if ty.contains("BLOB") {
                Kind::Bytes
            } else {
                Kind::Text
            };
            Ok((name, kind))
        })
        .collect()
}

async fn count(db: &Db, table: &str) -> ServerResult<i64> {
    Ok(sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&db.read)
        .await?
        .try_get("n")?)
}

/// Copies every table of `from` (SQLite) into `to` (PostgreSQL, empty).
pub async fn copy_database(from: &str, to: &str) -> ServerResult<CopyReport> {
    let src = Db::connect(from).await?;
    if src.backend != Backend::Sqlite {
        return Err(ServerError::Config(format!(
            "--from {}: expected a sqlite:// URL",
            redact_url(from)
        )));
    }
    let dst = Db::connect(to).await?;
    if dst.backend != Backend::Postgres {
        return Err(ServerError::Config(format!(
            "--to {}: expected a postgres:// URL",
            redact_url(to)
        )));
    }
    // What the source queued is folded first: PostgreSQL writes a case's
    // last attempt at once and never folds a queue, so a queued attempt
    // copied as it is would leave its case's last status behind there.
    super::case_last::settle(&src).await?;
    let tables = tables_in_dependency_order(&src).await?;
    for t in &tables {
        if count(&dst, t).await? > 0 {
            return Err(ServerError::Config(format!(
                "the target database is not empty (table {t} has rows); migrate into a new database"
            )));
        }
    }
    let mut report = CopyReport::default();
    for t in &tables {
        let cols = columns(&src, t).await?;
        let names: Vec<String> = cols.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {t} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let select = format!(
            "SELECT {} FROM {t} ORDER BY rowid LIMIT $1 OFFSET $2",
            names.join(", ")
        );
        let mut offset = 0;
        loop {
            let rows = sqlx::query(&select)
                .bind(CHUNK)
                .bind(offset)
                .fetch_all(&src.read)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut tx = dst.write.begin().await?;
            for row in &rows {
                let mut q = sqlx::query(&insert);
                for (i, (_, kind)) in cols.iter().enumerate() {
                    q = match kind {
                        Kind::Integer => q.bind(row.try_get::<Option<i64>, _>(i)?),
                        Kind::Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                        Kind::Bytes => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
                    };
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            offset += rows.len() as i64;
        }
        if cols
            .iter()
            .any(|(n, kind)| n == "id" && *kind == Kind::Integer)
        {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), \
                 (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}), false)"
            ))
            .execute(&dst.write)
            .await?;
        }
        let (a, b) = (count(&src, t).await?, count(&dst, t).await?);
        if a != b {
            return Err(ServerError::Config(format!(
                "table {t}: {a} rows in the source but {b} in the target after the copy"
            )));
        }
        report.tables.insert(t.clone(), b);
    }
    // Attachments must point at the same content.
    let hashes = |db: Db| async move {
        let rows = sqlx::query("SELECT id, sha256 FROM attachments ORDER BY id")
            .fetch_all(&db.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok::<_, ServerError>((
                    r.try_get::<i64, _>("id")?,
                    r.try_get::<Option<String>, _>("sha256")?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    if hashes(src).await? != hashes(dst).await? {
        return Err(ServerError::Config(
            "attachment hashes differ between source and target after the copy".into(),
        ));
    }
    Ok(report)
}
