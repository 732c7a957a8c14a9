//! Embedded storage comparison: cairn-core against raw fjall, redb and sled on
//! the same workloads (batch put, point get, prefix scan, single puts with and
//! without fsync), so cairn's cost over its storage library and its standing
//! against the usual Rust alternatives are numbers, not claims.
//!
//! Run by `cargo bench -p cairn-bench-compare --bench embedded -- --keys N
//! --rounds R --csv FILE`; `bench/compare.sh` does that and folds the CSV into
//! its report. Every system sees the same keys (`user:` + 12 digits, 17
//! bytes) and values (128 bytes).

mod engines;
mod workload;

pub use engines::{Engine, SYSTEMS, open};
pub use workload::{Params, Row, key, run_round, value};
