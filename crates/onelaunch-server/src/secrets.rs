//! Encryption at rest for secrets the server must use later (build-server
//! credentials of job integrations), which therefore cannot be hashed like API
//! tokens. ChaCha20-Poly1305 under a 32-byte server key kept in a file
//! (`--secret-key-file`, default `<data>/secret.key`, created with mode 0600
//! on first start). Replicas share the key through the shared data directory
//! or the same file. Values are stored as `enc1:<hex(nonce ‖ ciphertext)>`.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::error::{ServerError, ServerResult};

const PREFIX: &str = "enc1:";

/// The server key. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fingerprint of the key for the database (`server_meta`): SHA-256 of a
    /// fixed label and the key, hex. It tells keys apart without revealing one.
    pub(crate) fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"onelaunch secret-key fingerprint v1\0");
        h.update(self.0);
        hex::encode(h.finalize())
    }

    /// Reads the key file; `None` when it does not exist.
    pub(crate) fn load(path: &Path) -> ServerResult<Option<SecretKey>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn parse(path: &Path, text: &str) -> ServerResult<SecretKey> {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            ServerError::Config(format!(
                "secret key file {}: expected 64 hex characters",
                path.display()
            ))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            ServerError::Config(format!(
                "secret key file {}: expected 64 hex characters (32 bytes)",
                path.display()
            ))
        })?;
        Ok(SecretKey(key))
    }

    /// Reads the key file, or creates it (owner-only) when it does not exist.
    pub(crate) fn load_or_create(path: &Path) -> ServerResult<SecretKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Written whole to a temporary file, then linked into place:
                // a replica starting at the same time on a shared directory
                // never reads a half-written key, and the first link wins.
                let mut nonce = [0u8; 8];
                rand::thread_rng().fill_bytes(&mut nonce);
                let tmp = path.with_extension(format!("{}.tmp", hex::encode(nonce)));
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let written = opts.open(&tmp).and_then(|mut f| {
                    f.write_all(hex::encode(key).as_bytes())?;
                    f.sync_all()
                });
                let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(SecretKey(key)),
                    // Another replica created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Encrypts a value for storage.
    pub(crate) fn seal(&self, plaintext: &str) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}", hex::encode(out))
    }

    /// Decrypts a stored value. Values stored before encryption was introduced
    /// (no prefix) are returned as they are and sealed on their next write.
    pub(crate) fn open(&self, stored: &str) -> ServerResult<String> {
        let Some(hex_part) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = hex::decode(hex_part)
            .map_err(|_| ServerError::Config("a stored secret is corrupt".into()))?;
        if bytes.len() < 12 {
            return Err(ServerError::Config("a stored secret is corrupt".into()));
        }
        let (nonce, ct) = bytes.split_at(12);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let pt = cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| {
            ServerError::Config(
                "a stored secret cannot be decrypted with this server's key (--secret-key-file)"
                    .into(),
            )
        })?;
        String::from_utf8(pt).map_err(|_| ServerError::Config("a stored secret is corrupt".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let k = SecretKey::load_or_create(&path).unwrap();
        let sealed = k.seal("ghp_example");
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("ghp_example"));
        assert_ne!(sealed, k.seal("ghp_example"), "fresh nonce every time");
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "ghp_example");
        assert_eq!(k.open("legacy-plain").unwrap(), "legacy-plain");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let other = SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(!format!("{k:?}").contains(&hex::encode(k.0)));
        assert_eq!(k.fingerprint(), again.fingerprint());
        assert_ne!(k.fingerprint(), other.fingerprint());
        assert!(!k.fingerprint().contains(&hex::encode(k.0)));
        assert!(SecretKey::load(&dir.path().join("none.key"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn replicas_creating_the_key_at_once_all_get_the_same_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secret.key");
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| SecretKey::load_or_create(&path).unwrap().0))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]));
            let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(files.len(), 1, "no temporary file left behind");
        }
    }
}
