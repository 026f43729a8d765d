//! `Error`: everything that can fail in storage — RocksDB I/O and undecodable
//! records. Business rejections (too many streams, stale cursor …) are not errors:
//! they are deterministic results, see `command::Rejection`.

/// The storage crate's one error enum.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RocksDB reported a failure (I/O, corruption, options).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A column family the code expects is missing from the open database.
    #[error("missing column family {0}")]
    MissingColumnFamily(&'static str),
    /// A stored record could not be decoded.
    #[error("corrupt record in {cf}: {reason}")]
    Corrupt { cf: &'static str, reason: String },
    /// A snapshot file could not be read or written.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// Plain file-system I/O (snapshot files, directories).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
