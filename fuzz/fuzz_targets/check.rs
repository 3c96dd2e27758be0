//! Arbitrary bytes as a connector file, through what `connector check` runs: no panic, every
//! diagnostic inside the file, no more of them than the cap (`connector_tests::check_hostile`,
//! which `tests/tests/robustness.rs` runs on generated inputs too).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(problem) = connector_tests::check_hostile(data) {
        panic!("{problem}");
    }
});
