//! Content-addressed attachment storage: bytes live once under their SHA-256,
//! rows in the database point at the digest. A directory on disk today; every
//! replica pointing at the same directory serves every attachment.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::ServerResult;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub(crate) fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(BlobStore { root })
    }

    fn path_of(&self, sha: &str) -> PathBuf {
        let (a, _) = sha.split_at(2.min(sha.len()));
        self.root.join(a).join(sha)
    }

    /// Stores bytes and returns their hex SHA-256. Storing the same bytes twice
    /// writes nothing the second time.
    pub(crate) async fn put(&self, bytes: &[u8]) -> ServerResult<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(sha);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        // A temporary name unique to this write: the same bytes may be stored
        // concurrently by this process or by another replica.
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{sha}.{}.{n}.tmp", std::process::id()));
        tokio::fs::write(&tmp, bytes).await?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Err(e.into());
            }
        }
        Ok(sha)
    }

    pub(crate) async fn get(&self, sha: &str) -> ServerResult<Option<Vec<u8>>> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        match tokio::fs::read(self.path_of(sha)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_puts_of_the_same_bytes_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path()).unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.put(b"same bytes").await })
            })
            .collect();
        let mut shas = std::collections::BTreeSet::new();
        for t in tasks {
            shas.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(shas.len(), 1);
        let sha = shas.into_iter().next().unwrap();
        assert_eq!(store.get(&sha).await.unwrap().unwrap(), b"same bytes");
        let leftovers = std::fs::read_dir(dir.path().join(&sha[..2]))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
