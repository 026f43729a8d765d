//! The properties the fuzz targets in `fuzz/` check, one function per target, shared
//! with the replay of their corpora on stable (`wire/tests/fuzz_corpus.rs`). Each
//! takes any bytes and panics only when its property does not hold.

mod envelope;
mod multipart;
mod producer_body;

pub use envelope::check_validate;
pub use multipart::check_parse_round_trip;
pub use producer_body::check_split;
