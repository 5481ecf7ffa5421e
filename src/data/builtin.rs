//! The built-in dataset: UCI optical digits (1,797 8×8 images, pixel values 0–16, CC BY 4.0),
//! embedded in the binary so `nabla train` works with no file at all. Pixels are kept as bytes
//! and scaled by 1/16 to [0, 1].

use super::dataset::{Dataset, Features};
use crate::error::NablaError;

/// The CSV text of the built-in dataset (header `pixel_0..pixel_63,digit`).
pub const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// The built-in digits dataset: 1,797 samples, 64 features in [0, 1], classes "0".."9".
pub fn digits() -> Result<Dataset, NablaError> {
    let path = "built-in digits.csv";
    let mut lines = DIGITS_CSV.lines();
    let header = lines
        .next()
        .ok_or_else(|| NablaError::data(path, "line 1", "empty file, expected a header"))?;
    let dim = header.split(',').count().saturating_sub(1);
    let mut values = Vec::with_capacity(1797 * dim);
    let mut labels = Vec::with_capacity(1797);
    for (i, line) in lines.enumerate() {
        let location = || format!("line {}", i + 2);
        let mut fields = line.split(',');
        for _ in 0..dim {
            let v: u8 = fields
                .next()
                .and_then(|f| f.trim().parse().ok())
                .filter(|&v| v <= 16)
                .ok_or_else(|| {
                    NablaError::data(path, location(), "expected a pixel value 0..16")
                })?;
            values.push(v);
        }
        let label: u32 = fields
            .next()
            .and_then(|f| f.trim().parse().ok())
            .filter(|&l| l < 10)
            .ok_or_else(|| NablaError::data(path, location(), "expected a digit 0..9"))?;
        labels.push(label);
    }
    Dataset::new(
        "digits (built-in)",
        Features::U8 {
            values,
            scale: 1.0 / 16.0,
        },
        dim,
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
