//! `cargo fuzz run record_batch`: see `sluice::fuzzing::record_batch`.
#![no_main]

// The broker's allocator: kafka-protocol reserves claimed array lengths up front.
#[global_allocator]
static A: sluice::alloc::Guarded = sluice::alloc::Guarded;

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::record_batch(data));
