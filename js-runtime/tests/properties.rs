//! Property tests of `Bundle::from_zip`, the parser every plugin upload and
//! webhook ZIP goes through: random bytes, valid archives with flipped or
//! cut bytes, and archives written with hostile entry names and sizes.
//! Whatever comes in: no panic, every problem names its entry (or `(zip)`
//! for the archive), and an accepted bundle is within the limits. Seeds are
//! fixed and case counts bounded.

use std::io::Write;

use extensor_js::{Bundle, ZipLimits};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x5eed_0013),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Small caps so generated archives reach them.
fn limits() -> ZipLimits {
    ZipLimits {
        upload_bytes_max: 64 * 1024,
        uncompressed_bytes_max: 128 * 1024,
        entries_max: 16,
        compression_ratio_max: 50,
    }
}

fn zip_of(entries: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        // The writer itself refuses some names; those entries are left out.
        if w.start_file(name.as_str(), opts).is_ok() {
            let _ = w.write_all(body);
        }
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

fn valid_zip() -> Vec<u8> {
    let manifest = br#"{"slug":"p","name":"P","version":"1.0.0","entry":"main.js"}"#.to_vec();
    zip_of(&[
        ("manifest.json".into(), manifest, true),
        ("main.js".into(), b"export const x = 1;".to_vec(), false),
    ])
}

fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}\\.js",
        Just("manifest.json".to_owned()),
        Just("../evil.js".to_owned()),
        Just("/abs.js".to_owned()),
        Just("a\\b.js".to_owned()),
        Just("dir/".to_owned()),
        Just("a/./b.js".to_owned()),
        Just("x\u{0}y.js".to_owned()),
        Just("\u{202e}sj.txt".to_owned()),
        (200usize..400).prop_map(|n| format!("{}.js", "d/".repeat(n))),
        ".{0,12}",
    ]
}

fn entry_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        // Highly compressible: a ratio bomb under deflate.
        (1usize..200_000).prop_map(|n| vec![0u8; n]),
    ]
}

fn assert_located(result: Result<Bundle, Vec<extensor_js::Problem>>) -> Result<(), TestCaseError> {
    match result {
        Ok(bundle) => {
            let l = limits();
            prop_assert!(bundle.total_bytes() <= l.uncompressed_bytes_max);
            prop_assert!(bundle.paths().count() <= l.entries_max);
            for p in bundle.paths() {
                prop_assert!(
                    !p.starts_with('/') && !p.contains("..") && !p.contains('\\'),
                    "{p}"
                );
            }
        }
        Err(problems) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(!p.path.is_empty() && !p.message.is_empty(), "{p:?}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        assert_located(Bundle::from_zip(&bytes, &limits()))?;
    }

    #[test]
    fn flipped_bytes_of_a_valid_archive_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = valid_zip();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        assert_located(Bundle::from_zip(&bytes, &limits()))?;
    }

    #[test]
    fn cut_archives_never_panic(cut in any::<prop::sample::Index>()) {
        let bytes = valid_zip();
        let n = cut.index(bytes.len());
        assert_located(Bundle::from_zip(&bytes[..n], &limits()))?;
    }

    #[test]
    fn hostile_entries_are_refused_by_name_or_kept_within_limits(
        entries in prop::collection::vec((entry_name(), entry_body(), any::<bool>()), 0..24),
    ) {
        let mut all = vec![(
            "manifest.json".to_owned(),
            br#"{"slug":"p","name":"P","version":"1.0.0","entry":"main.js"}"#.to_vec(),
            true,
        )];
        all.extend(entries);
        assert_located(Bundle::from_zip(&zip_of(&all), &limits()))?;
    }
}
