//! Replays the committed corpora of the wire fuzz targets (`fuzz/corpus/<target>`)
//! through the same property checks, on stable, so every input the fuzzer kept — and
//! every crash it found, once fixed — stays a test.

use std::path::Path;

/// Runs `check` over every file of `fuzz/corpus/<target>`; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        check(&data);
        replayed += 1;
    }
    replayed
}

#[test]
fn multipart_parse_corpus_holds_the_property() {
    let replayed = replay("multipart_parse", wire::fuzzing::check_parse_round_trip);
    assert!(replayed >= 5, "the corpus holds seeds ({replayed} replayed)");
}

#[test]
fn envelope_validate_corpus_holds_the_property() {
    let replayed = replay("envelope_validate", wire::fuzzing::check_validate);
    assert!(replayed >= 5, "the corpus holds seeds ({replayed} replayed)");
}

#[test]
fn producer_body_corpus_holds_the_property() {
    let replayed = replay("producer_body", wire::fuzzing::check_split);
    assert!(replayed >= 5, "the corpus holds seeds ({replayed} replayed)");
}
