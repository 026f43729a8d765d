//! See `wire::fuzzing::check_validate` for the property and the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wire::fuzzing::check_validate(data);
});
