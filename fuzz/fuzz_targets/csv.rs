//! Any bytes through the CSV reader and, when they parse, the table pipeline (task detection,
//! missing values, splits, encoding, scaling): errors are fine, panics are not.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nabla::data::csv::{self, CsvOptions};
use nabla::data::{Impute, Scaling, TableOptions, table};

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks options, so the fuzzer explores them too.
    let (mode, body) = bytes.split_first().unwrap_or((&0, &[]));
    let options = CsvOptions {
        delimiter: (mode & 1 == 1).then_some(b';'),
        ..Default::default()
    };
    let Ok(raw) = csv::read_bytes(Path::new("fuzz.csv"), body, &options) else {
        return;
    };
    let table_options = TableOptions {
        task: None,
        impute: match (mode >> 1) & 3 {
            0 => Impute::Refuse,
            1 => Impute::Mean,
            2 => Impute::Median,
            _ => Impute::DropRows,
        },
        scaling: match (mode >> 3) & 3 {
            0 => Scaling::Standard,
            1 => Scaling::MinMax,
            _ => Scaling::None,
        },
        test_split: if mode & 32 == 0 { 0.2 } else { 0.0 },
        val_split: if mode & 64 == 0 { 0.0 } else { 0.25 },
        limit_train: if mode & 128 == 0 { None } else { Some(3) },
        seed: 1,
    };
    if let Ok(p) = table::prepare("fuzz", raw, None, &table_options) {
        let mut row = vec![0.0f32; p.train.dim()];
        if !p.train.is_empty() {
            p.train.gather(&[0], &mut row);
        }
    }
});
