//! Replays the committed corpus of the `multipart_parse` fuzz target (fuzz/corpus/multipart_parse) through
//! the same property check, on stable, so every input the fuzzer kept — and every
//! crash it found, once fixed — stays a test.

#[test]
fn every_corpus_input_holds_the_property() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/multipart_parse");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        wire::multipart::fuzzing::check_parse_round_trip(&data);
        replayed += 1;
    }
    assert!(replayed >= 5, "the corpus holds seeds ({replayed} replayed)");
}
