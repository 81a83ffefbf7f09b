//! `cargo fuzz run recovery`: see `sluice::fuzzing::recovery`.
#![no_main]

// The broker's allocator: kafka-protocol reserves claimed array lengths up front.
#[global_allocator]
static A: sluice::alloc::Guarded = sluice::alloc::Guarded;

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::recovery(data));
