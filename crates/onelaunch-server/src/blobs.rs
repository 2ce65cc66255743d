//! Content-addressed attachment storage: bytes live once under their SHA-256,
//! rows in the database point at the digest. A directory on disk today; every
//! replica pointing at the same directory serves every attachment.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::ServerResult;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
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
    pub async fn put(&self, bytes: &[u8]) -> ServerResult<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(sha);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{sha}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(sha)
    }

    pub async fn get(&self, sha: &str) -> ServerResult<Option<Vec<u8>>> {
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
