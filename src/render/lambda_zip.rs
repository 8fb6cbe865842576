//! The firewall lifecycle lambda as a reproducible zip: sorted entries, fixed timestamps and
//! permissions, so the same sources give the same bytes, and an object key derived from the
//! content hash so a code change rolls the function (CloudFormation sees a new S3 key).

use std::io::{Cursor, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/lambda_files.rs"));
}

pub use embedded::LAMBDA_FILES;

#[derive(Clone)]
pub struct LambdaZip {
    /// S3 object key, e.g. `fw-lifecycle-3f2a…c1.zip`.
    pub key: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl std::fmt::Debug for LambdaZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaZip").field("key", &self.key).field("len", &self.bytes.len()).finish()
    }
}

/// Builds the zip from the embedded sources.
pub fn build() -> LambdaZip {
    build_from(LAMBDA_FILES)
}

pub fn build_from(files: &[(&str, &[u8])]) -> LambdaZip {
    let mut sorted: Vec<&(&str, &[u8])> = files.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in sorted {
        // Writing to memory cannot fail except on a bug; say which entry if it ever does.
        zip.start_file(*name, opts).unwrap_or_else(|e| panic!("zip entry {name}: {e}"));
        zip.write_all(body).unwrap_or_else(|e| panic!("zip entry {name}: {e}"));
    }
    let bytes = zip.finish().expect("finishing an in-memory zip").into_inner();
    let sha256 = hex(&Sha256::digest(&bytes));
    LambdaZip { key: format!("fw-lifecycle-{}.zip", &sha256[..16]), bytes, sha256 }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_sources_same_bytes_and_key() {
        let a = build();
        let b = build();
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.key, b.key);
        assert!(a.key.starts_with("fw-lifecycle-") && a.key.ends_with(".zip"));
    }

    #[test]
    fn holds_exactly_the_top_level_sources_sorted_with_fixed_metadata() {
        let z = build();
        let mut archive = zip::ZipArchive::new(Cursor::new(z.bytes)).unwrap();
        let names: Vec<String> = (0..archive.len()).map(|i| archive.by_index(i).unwrap().name().unwrap().to_string()).collect();
        let mut want: Vec<String> = LAMBDA_FILES.iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
        assert!(names.contains(&"fw_lifecycle.py".to_string()), "the handler module is packed");
        assert!(names.iter().all(|n| !n.contains('/')), "no tests or folders are packed: {names:?}");
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            assert_eq!(f.last_modified(), Some(DateTime::default()));
            assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o644));
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut body).unwrap();
            let (_, src) = LAMBDA_FILES.iter().find(|(n, _)| *n == f.name().unwrap()).unwrap();
            assert_eq!(&body[..], *src);
        }
    }

    #[test]
    fn input_order_does_not_matter_but_content_does() {
        let a = build_from(&[("b.py", b"2"), ("a.py", b"1")]);
        let b = build_from(&[("a.py", b"1"), ("b.py", b"2")]);
        let c = build_from(&[("a.py", b"1"), ("b.py", b"3")]);
        assert_eq!(a.bytes, b.bytes);
        assert_ne!(a.key, c.key, "a code change must roll the function");
    }
}
