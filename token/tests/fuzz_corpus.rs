//! Replays the committed corpus of the `token_decode` fuzz target (fuzz/corpus/token_decode) through
//! the same property check, on stable, so every input the fuzzer kept — and every
//! crash it found, once fixed — stays a test.

#[test]
fn every_corpus_input_holds_the_property() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/token_decode");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        token::fuzzing::check_verify(&token::fuzzing::fuzz_ring(), &data);
        replayed += 1;
    }
    assert!(replayed >= 5, "the corpus holds seeds ({replayed} replayed)");
}
