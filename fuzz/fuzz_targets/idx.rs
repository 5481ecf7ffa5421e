//! Any bytes through the IDX reader (as labels, 1 dimension, and images, 3 dimensions):
//! errors are fine, panics and huge allocations are not (libFuzzer's -rss_limit_mb catches
//! the latter).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nabla::data::idx;

fuzz_target!(|bytes: &[u8]| {
    let _ = idx::read_bytes(Path::new("fuzz-idx"), bytes, 1);
    let _ = idx::read_bytes(Path::new("fuzz-idx"), bytes, 3);
});
