//! `regex`'s API as far as vsrun's dependencies use it (oci-spec: `Regex::new`, `is_match`),
//! served by regex-lite. Why: see Cargo.toml.
pub use regex_lite::*;
