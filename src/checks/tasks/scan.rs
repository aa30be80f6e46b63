//! The YAML scanner lives in its own crate (`crates/pipeline-scan`) so that it alone is built
//! for speed while the rest of the binary is built for size.

pub use azp_preflight_scan::*;
