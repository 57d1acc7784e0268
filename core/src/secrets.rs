//! Secrets at rest: the platform key and AES-SIV encryption of secret values.
//!
//! Plugin and tenant secrets are stored in the event log only as ciphertext.
//! [`SecretKey`] is the platform key (64 bytes: AES-256-CMAC-SIV), loaded
//! from the environment or a key file; [`SecretBox`] encrypts one value for
//! one *context* (`<tenant>/<installation>/<key>`), which is bound in as
//! associated data so that a ciphertext copied into another slot, tenant or
//! installation does not decrypt.
//!
//! Each ciphertext carries a fresh random 16-byte nonce (also bound as
//! associated data), so setting the same value twice does not produce the
//! same ciphertext; SIV stays safe even if a nonce ever repeated.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_siv::aead::KeyInit;
use aes_siv::siv::Aes256Siv;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::Error;

/// AES-256-SIV takes two 256-bit keys (MAC and encryption).
pub const SECRET_KEY_BYTES: usize = 64;
/// Random nonce prepended to every ciphertext.
const NONCE_BYTES: usize = 16;
/// The key file's name inside the data directory.
pub const SECRET_KEY_FILE_NAME: &str = "secret.key";
/// The key itself, base64 (takes precedence).
pub const SECRET_KEY_ENV: &str = "EXTENSOR_SECRET_KEY";
/// A file holding the base64 key (second choice).
pub const SECRET_KEY_FILE_ENV: &str = "EXTENSOR_SECRET_KEY_FILE";
/// Plaintext secrets larger than this are refused: they are configuration
/// values, and the ciphertext must fit the installation aggregate's limit.
pub const SECRET_PLAINTEXT_BYTES_MAX: usize = 32 * 1024;

/// The platform's secret key. Never printed: `Debug` shows only a tag.
#[derive(Clone)]
pub struct SecretKey([u8; SECRET_KEY_BYTES]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut key = [0u8; SECRET_KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| Error::SecretKey {
            source_name: "the system random source".into(),
            reason: e.to_string(),
        })?;
        Ok(SecretKey(key))
    }

    /// Parses a base64 key (standard alphabet, padding optional, surrounding
    /// whitespace ignored). `source_name` names where it came from in errors.
    pub fn from_base64(text: &str, source_name: &str) -> Result<SecretKey, Error> {
        let bad = |reason: String| Error::SecretKey {
            source_name: source_name.into(),
            reason,
        };
        let trimmed = text.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(|e| bad(format!("not valid base64: {e}")))?;
        let key: [u8; SECRET_KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            bad(format!(
                "decodes to {} bytes; a key is {SECRET_KEY_BYTES} bytes (generate one with `head -c 64 /dev/urandom | base64 -w0`)",
                bytes.len()
            ))
        })?;
        Ok(SecretKey(key))
    }

    /// The key in base64, for writing a key file.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Loads the platform key: `EXTENSOR_SECRET_KEY` (base64), else the file
    /// named by `EXTENSOR_SECRET_KEY_FILE`, else `<data_dir>/secret.key`,
    /// which is created (mode 0600) with a fresh key if it does not exist.
    pub fn load(data_dir: &Path) -> Result<SecretKey, Error> {
        Self::load_with(data_dir, |name| std::env::var(name).ok())
    }

    /// [`load`](Self::load) over any environment lookup (tests).
    pub fn load_with(
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SecretKey, Error> {
        if let Some(text) = env(SECRET_KEY_ENV) {
            return SecretKey::from_base64(&text, SECRET_KEY_ENV);
        }
        if let Some(path) = env(SECRET_KEY_FILE_ENV) {
            return read_key_file(Path::new(&path));
        }
        let path = data_dir.join(SECRET_KEY_FILE_NAME);
        if path.exists() {
            return read_key_file(&path);
        }
        let key = SecretKey::generate()?;
        write_key_file(&path, &key)?;
        tracing::info!(path = %path.display(), "generated a new platform secret key");
        Ok(key)
    }
}

fn read_key_file(path: &Path) -> Result<SecretKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::SecretKeyFile {
        path: path.into(),
        detail: e.to_string(),
    })?;
    SecretKey::from_base64(&text, &path.display().to_string())
}

/// Creates the key file exclusively (never overwrites a key: that would make
/// every stored secret undecryptable) with owner-only permissions.
fn write_key_file(path: &Path, key: &SecretKey) -> Result<(), Error> {
    let err = |e: std::io::Error| Error::SecretKeyFile {
        path: path.into(),
        detail: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(err)?;
    file.write_all(key.to_base64().as_bytes()).map_err(err)?;
    file.write_all(b"\n").map_err(err)?;
    file.sync_all().map_err(err)
}

/// Encrypts and decrypts secret values under the platform key.
#[derive(Clone, Debug)]
pub struct SecretBox {
    key: SecretKey,
}

impl SecretBox {
    pub fn new(key: SecretKey) -> SecretBox {
        SecretBox { key }
    }

    fn cipher(&self) -> Aes256Siv {
        // A 64-byte key always fits AES-256-SIV; the key schedule per call
        // costs a microsecond and keeps `SecretBox` free of locks.
        Aes256Siv::new_from_slice(&self.key.0).expect("64-byte AES-256-SIV key")
    }

    /// Base64 of `nonce ‖ SIV ciphertext` for `plaintext` in `context`.
    pub fn encrypt(&self, context: &str, plaintext: &str) -> Result<String, Error> {
        if plaintext.len() > SECRET_PLAINTEXT_BYTES_MAX {
            return Err(Error::SecretTooLarge {
                len: plaintext.len(),
                max: SECRET_PLAINTEXT_BYTES_MAX,
            });
        }
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| Error::SecretKey {
            source_name: "the system random source".into(),
            reason: e.to_string(),
        })?;
        let sealed = self
            .cipher()
            .encrypt([context.as_bytes(), &nonce[..]], plaintext.as_bytes())
            .map_err(|e| Error::SecretDecrypt {
                context: context.into(),
                reason: format!("encryption failed: {e}"),
            })?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    /// The plaintext of `ciphertext`, if it was sealed for `context` under
    /// this key and not altered.
    pub fn decrypt(&self, context: &str, ciphertext: &str) -> Result<String, Error> {
        let fail = |reason: &str| Error::SecretDecrypt {
            context: context.into(),
            reason: reason.into(),
        };
        let raw = B64
            .decode(ciphertext.trim())
            .map_err(|_| fail("not valid base64"))?;
        if raw.len() < NONCE_BYTES + 16 {
            return Err(fail("too short to be a sealed secret"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let plain = self
            .cipher()
            .decrypt([context.as_bytes(), nonce], sealed)
            .map_err(|_| {
                fail("authentication failed (wrong key, wrong slot, or altered ciphertext)")
            })?;
        String::from_utf8(plain).map_err(|_| fail("plaintext is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sbox() -> SecretBox {
        SecretBox::new(SecretKey::generate().unwrap())
    }

    #[test]
    fn round_trip_and_fresh_nonce() {
        let b = sbox();
        let c1 = b.encrypt("ten/ins/API_KEY", "hunter2").unwrap();
        let c2 = b.encrypt("ten/ins/API_KEY", "hunter2").unwrap();
        assert_ne!(c1, c2, "same value twice must not give the same ciphertext");
        assert!(!c1.contains("hunter2"));
        assert_eq!(b.decrypt("ten/ins/API_KEY", &c1).unwrap(), "hunter2");
        assert_eq!(b.decrypt("ten/ins/API_KEY", &c2).unwrap(), "hunter2");
        assert_eq!(
            b.encrypt("c", "")
                .map(|c| b.decrypt("c", &c).unwrap())
                .unwrap(),
            ""
        );
    }

    #[test]
    fn wrong_context_or_key_refused() {
        let b = sbox();
        let c = b.encrypt("ten_a/ins_1/TOKEN", "v").unwrap();
        let err = b.decrypt("ten_b/ins_1/TOKEN", &c).unwrap_err();
        assert!(err.to_string().contains("ten_b/ins_1/TOKEN"), "{err}");
        assert!(b.decrypt("ten_a/ins_1/OTHER", &c).is_err());
        assert!(sbox().decrypt("ten_a/ins_1/TOKEN", &c).is_err());
    }

    #[test]
    fn tampered_ciphertext_refused() {
        let b = sbox();
        let c = b.encrypt("ctx", "secret value").unwrap();
        let mut raw = B64.decode(&c).unwrap();
        for i in [0, NONCE_BYTES, raw.len() - 1] {
            raw[i] ^= 0x01;
            let err = b.decrypt("ctx", &B64.encode(&raw)).unwrap_err();
            assert!(err.to_string().contains("authentication failed"), "{err}");
            raw[i] ^= 0x01;
        }
        assert!(
            b.decrypt("ctx", "!!!")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        assert!(
            b.decrypt("ctx", "AAAA")
                .unwrap_err()
                .to_string()
                .contains("too short")
        );
        let too_big = "x".repeat(SECRET_PLAINTEXT_BYTES_MAX + 1);
        assert!(matches!(
            b.encrypt("ctx", &too_big),
            Err(Error::SecretTooLarge { .. })
        ));
    }

    #[test]
    fn load_order_and_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        let k1 = SecretKey::load_with(dir.path(), none).unwrap();
        let path = dir.path().join(SECRET_KEY_FILE_NAME);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The second load reads the same key back.
        let k2 = SecretKey::load_with(dir.path(), none).unwrap();
        assert_eq!(k1.0, k2.0);

        let other = SecretKey::generate().unwrap();
        let env_key = other.to_base64();
        let from_env = SecretKey::load_with(dir.path(), |n| {
            (n == SECRET_KEY_ENV).then(|| env_key.clone())
        })
        .unwrap();
        assert_eq!(from_env.0, other.0);

        let file = dir.path().join("custom.key");
        std::fs::write(&file, format!("  {}\n", other.to_base64())).unwrap();
        let file_str = file.display().to_string();
        let from_file = SecretKey::load_with(dir.path(), |n| {
            (n == SECRET_KEY_FILE_ENV).then(|| file_str.clone())
        })
        .unwrap();
        assert_eq!(from_file.0, other.0);
    }

    #[test]
    fn malformed_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let short = B64.encode([1u8; 32]);
        let err =
            SecretKey::load_with(dir.path(), |n| (n == SECRET_KEY_ENV).then(|| short.clone()))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains(SECRET_KEY_ENV) && err.contains("32 bytes"),
            "{err}"
        );
        let err = SecretKey::from_base64("not base64 at all!", "test").unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
        let missing = dir.path().join("nope.key").display().to_string();
        let err = SecretKey::load_with(dir.path(), |n| {
            (n == SECRET_KEY_FILE_ENV).then(|| missing.clone())
        })
        .unwrap_err();
        assert!(err.to_string().contains("nope.key"), "{err}");
        std::fs::write(dir.path().join(SECRET_KEY_FILE_NAME), "garbage").unwrap();
        let err = SecretKey::load_with(dir.path(), |_| None).unwrap_err();
        assert!(err.to_string().contains(SECRET_KEY_FILE_NAME), "{err}");
        assert_eq!(
            format!("{:?}", SecretKey::generate().unwrap()),
            "SecretKey(..)"
        );
    }
}
