//! Any input as a boundary and a producer `multipart/mixed` body: parsing never
//! panics, and what parses round-trips through the renderer
//! (`wire::fuzzing::check_parse_round_trip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wire::fuzzing::check_parse_round_trip(data);
});
