//! The built-in dataset: UCI optical digits (1,797 8×8 images, pixel values 0–16, CC BY 4.0),
//! embedded in the library so a run needs no file at all.
//!
//! It is read by the same CSV reader and table pipeline as a file on disk (same task detection,
//! split and default scaling), so the built-in data and the same `digits.csv` read from disk
//! give the same numbers for the same seed.

use std::path::Path;

use super::csv::{self, CsvOptions, RawTable, RawTarget};
use super::dataset::{Dataset, Features};
use crate::error::NablaError;

/// The CSV text of the built-in dataset (header `pixel_0..pixel_63,digit`).
pub const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// The name the built-in dataset goes by in reports.
pub const DIGITS_NAME: &str = "digits (built-in)";

/// The built-in digits as a raw table, exactly as [`csv::read`] would give `digits.csv`.
pub fn digits_table() -> Result<RawTable, NablaError> {
    csv::read_bytes(
        Path::new("built-in digits.csv"),
        DIGITS_CSV.as_bytes(),
        &CsvOptions::default(),
    )
}

/// The built-in digits dataset unsplit: 1,797 samples, 64 features scaled by 1/16 to [0, 1],
/// classes "0".."9". ([`crate::data::table::prepare`], which training runs use, instead
/// standardises, fitted on the training split.)
pub fn digits() -> Result<Dataset, NablaError> {
    let table = digits_table()?;
    let path = table.path.clone();
    let labels: Vec<u32> = match &table.target {
        RawTarget::Numeric(v) => v
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if (0.0..=9.0).contains(&d) && d.fract() == 0.0 {
                    Ok(d as u32)
                } else {
                    Err(NablaError::data(
                        &path,
                        format!("data row {}", i + 1),
                        "expected a digit 0..9",
                    ))
                }
            })
            .collect::<Result<_, _>>()?,
        RawTarget::Text { .. } => {
            return Err(NablaError::data(
                &path,
                "column \"digit\"",
                "expected digits",
            ));
        }
    };
    let values = table.values.iter().map(|&v| v / 16.0).collect();
    Dataset::new(
        DIGITS_NAME,
        Features::F32(values),
        table.columns.len(),
        labels,
        (0..10).map(|d| d.to_string()).collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_has_1797_samples_of_64_pixels() {
        let d = super::digits().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.dim(), 64);
        assert_eq!(d.classes().len(), 10);
        assert!(d.class_counts().iter().all(|&c| c > 170));
        let mut row = vec![0.0; 64];
        d.gather(&[0], &mut row);
        assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}
