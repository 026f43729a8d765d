//! `ConfigError`: why a configuration was refused, naming the file or the field.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML for `ConfigFile` (unknown fields included).
    #[error("config: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A field, or a relation between fields, is out of bounds.
    #[error("config field `{field}`: {why}")]
    Field { field: &'static str, why: String },
}

impl ConfigError {
    /// A refused field and why.
    pub fn field(field: &'static str, why: impl Into<String>) -> ConfigError {
        ConfigError::Field { field, why: why.into() }
    }
}
