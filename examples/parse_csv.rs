//! Parses a CSV file and reports rows, columns and throughput: the benchmark behind the
//! "CSV parsing" section of BENCHMARKS.md.
//!
//! `cargo run --release --example parse_csv -- FILE [--prepare]` (with `--prepare`, also runs
//! the table pipeline: split, scaling, building the datasets).

use std::path::PathBuf;
use std::time::Instant;

use nabla::data::csv::{self, CsvOptions};
use nabla::data::{TableOptions, table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: parse_csv FILE [--prepare]")?);
    let prepare = args.next().as_deref() == Some("--prepare");
    let bytes = std::fs::metadata(&path)?.len() as f64;
    let started = Instant::now();
    let raw = csv::read(&path, &CsvOptions::default())?;
    let seconds = started.elapsed().as_secs_f64();
    let (rows, columns) = (raw.rows(), raw.columns.len());
    println!(
        "parsed {rows} rows × {columns} feature columns ({:.1} MB) in {seconds:.3} s: {:.1} MB/s",
        bytes / 1e6,
        bytes / 1e6 / seconds
    );
    if prepare {
        let started = Instant::now();
        let options = TableOptions {
            task: None,
            impute: Default::default(),
            scaling: Default::default(),
            test_split: 0.2,
            val_split: 0.0,
            limit_train: None,
            seed: 1,
        };
        let p = table::prepare("bench", raw, None, &options)?;
        println!(
            "prepared {} training + {} test samples × {} inputs in {:.3} s",
            p.train.len(),
            p.test.len(),
            p.train.dim(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
