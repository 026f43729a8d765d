//! XML handling of producer messages: validation of the SPI envelope (`Envelope` with
//! `AppHdr` and `Document`) and extraction of its routing and type identifiers.

mod envelope;
#[cfg(test)]
mod sample_validation;

pub use envelope::{EnvelopeError, EnvelopeInfo, validate_envelope};
