//! Standard Webhooks signatures (<https://www.standardwebhooks.com>):
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`
//! with the key given as `whsec_<base64>`. During a rotation every secret
//! signs and the signatures are space-separated; a receiver accepts the
//! message when any of them verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `whsec_` keys shorter than this are refused (the spec's libraries
/// generate 24 to 64 random bytes).
pub const SECRET_BYTES_MIN: usize = 16;
pub const SECRET_BYTES_MAX: usize = 128;
pub const SECRET_PREFIX: &str = "whsec_";

/// A decoded signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; the error never echoes the secret.
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let body = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or("signing secrets are `whsec_` followed by base64")?;
        let bytes = STANDARD
            .decode(body.trim())
            .map_err(|_| "the part after `whsec_` is not valid base64")?;
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&bytes.len()) {
            return Err(format!(
                "signing secrets hold {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes; this one has {}",
                bytes.len()
            ));
        }
        Ok(SigningKey(bytes))
    }

    /// `whsec_<base64>` of `bytes` (tests and secret generation).
    pub fn encode(bytes: &[u8]) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<base64 signature>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether one of the space-separated `v1,` signatures in `header` is
    /// ours (constant-time comparison).
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(tag) = STANDARD.decode(b64) else {
                return false;
            };
            self.mac(msg_id, timestamp, body).verify_slice(&tag).is_ok()
        })
    }
}

/// The `webhook-signature` value for all `keys`, current first.
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification and its
    /// reference libraries' test suites.
    #[test]
    fn matches_the_specification_example() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(key.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &sig));
        assert!(!key.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &sig));
    }

    #[test]
    fn rotation_signs_with_every_key() {
        let old = SigningKey::parse(&SigningKey::encode(&[1u8; 32])).unwrap();
        let new = SigningKey::parse(&SigningKey::encode(&[2u8; 32])).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(old.verify("msg_1", 10, b"{}", &header));
        assert!(new.verify("msg_1", 10, b"{}", &header));
        let other = SigningKey::parse(&SigningKey::encode(&[3u8; 32])).unwrap();
        assert!(!other.verify("msg_1", 10, b"{}", &header));
    }

    #[test]
    fn bad_secrets_are_named_without_echo() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_AAAA",
        ] {
            let e = SigningKey::parse(bad).unwrap_err();
            assert!(!e.contains("MfKQ"), "{e}");
        }
    }
}
