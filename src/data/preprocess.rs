//! `Preprocess`: everything learned from the training split that turns a file's row into the
//! network's input, kept so a saved model can later read new rows exactly as it was trained.
//!
//! Its JSON form is the contract later work saves with the model:
//! `{"features": ["x1", "color=red", ...], "center": [..], "scale": [..], "scaling": "standard",
//! "columns": [...], "target": {...}}`. The network's input is `(x − center) / scale` element by
//! element, where `x` is the *encoded* row: numeric cells as they are (missing ones replaced by
//! the column's `impute` value) and each categorical column as a one-hot block over its
//! `categories` (all zeros for a category not seen in training).

use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, Features};
use crate::error::NablaError;
use crate::task::Task;

/// How numeric inputs are scaled (fitted on the training split only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `center` = mean, `scale` = standard deviation (1 for a constant column).
    #[default]
    Standard,
    /// `center` = minimum, `scale` = maximum − minimum (1 for a constant column): inputs in [0, 1].
    MinMax,
    /// `center` = 0, `scale` = 1.
    None,
    /// Image bytes: `center` = 0, `scale` = 255.
    Pixels,
}

impl Scaling {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Standard => "standard",
            Scaling::MinMax => "minmax",
            Scaling::None => "none",
            Scaling::Pixels => "pixels",
        }
    }
}

/// How one column of the file becomes one or more network inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ColumnEncoding {
    /// One input: the number itself.
    Numeric {
        /// The header name.
        name: String,
        /// The value that replaces a missing cell (the `impute` setting: mean or median), if imputing.
        impute: Option<f64>,
    },
    /// One input per category: 1 for the row's category, 0 elsewhere.
    Categorical {
        /// The header name.
        name: String,
        /// Categories seen in the training split, sorted; their order is the inputs' order.
        categories: Vec<String>,
        /// The category that replaces a missing cell (the most frequent one), if imputing.
        impute: Option<String>,
    },
}

/// What the network predicts and how to read its output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetEncoding {
    /// The target column's header name.
    pub name: String,
    /// Classification or regression.
    pub task: Task,
    /// Class names in output order (classification; empty for regression).
    pub classes: Vec<String>,
    /// Regression: prediction in the file's units = `center + scale · output`.
    pub center: f64,
    /// See `center`.
    pub scale: f64,
}

/// The fitted preprocessing of a table (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Names of the network's inputs, in order (`column` or `column=category`).
    pub features: Vec<String>,
    /// Subtracted from each encoded input.
    pub center: Vec<f64>,
    /// Each centred input is divided by this (never 0).
    pub scale: Vec<f64>,
    /// How `center` and `scale` were fitted.
    pub scaling: Scaling,
    /// How each selected file column is encoded, in input order.
    pub columns: Vec<ColumnEncoding>,
    /// The target.
    pub target: TargetEncoding,
}

impl Preprocess {
    /// The preprocessing of image pixels (IDX data): one input per pixel (`pixel_0`,
    /// `pixel_1`, ...), center 0 and scale 255, the label as the class target.
    pub fn pixels(inputs: usize, classes: Vec<String>) -> Self {
        let names: Vec<String> = (0..inputs).map(|i| format!("pixel_{i}")).collect();
        Preprocess {
            center: vec![0.0; inputs],
            scale: vec![255.0; inputs],
            scaling: Scaling::Pixels,
            columns: names
                .iter()
                .map(|n| ColumnEncoding::Numeric {
                    name: n.clone(),
                    impute: None,
                })
                .collect(),
            features: names,
            target: TargetEncoding {
                name: "label".into(),
                task: crate::nn::Task::Classification,
                classes,
                center: 0.0,
                scale: 1.0,
            },
        }
    }

    /// The preprocessing of image pixels with `scaling` fitted per pixel on the bytes of
    /// `train` (an image dataset): [`Scaling::Pixels`] is `/255` whatever the data, `None` keeps
    /// the bytes, `Standard` and `MinMax` use each pixel's mean and spread over the training
    /// images (a pixel that never changes gets scale 1). Computed in one pass over the rows with
    /// exact integer sums; equal to [`fit_column`] up to f64 rounding.
    pub fn pixels_fitted(train: &Dataset, scaling: Scaling) -> Result<Self, NablaError> {
        let mut p = Self::pixels(train.dim(), train.classes().to_vec());
        p.scaling = scaling;
        let d = train.dim();
        let Features::U8 { values, .. } = train.features() else {
            return Err(NablaError::Usage(format!(
                "{}: pixel scaling needs image (byte) features",
                train.name()
            )));
        };
        let safe = |s: f64| if s.is_finite() && s > 0.0 { s } else { 1.0 };
        match scaling {
            Scaling::Pixels => {}
            Scaling::None => {
                p.scale = vec![1.0; d];
            }
            Scaling::MinMax => {
                let (mut lo, mut hi) = (vec![u8::MAX; d], vec![u8::MIN; d]);
                for row in values.chunks_exact(d.max(1)) {
                    for ((l, h), &b) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                        *l = (*l).min(b);
                        *h = (*h).max(b);
                    }
                }
                if train.is_empty() {
                    p.center = vec![0.0; d];
                    p.scale = vec![1.0; d];
                } else {
                    p.center = lo.iter().map(|&l| f64::from(l)).collect();
                    p.scale = lo
                        .iter()
                        .zip(&hi)
                        .map(|(&l, &h)| safe(f64::from(h) - f64::from(l)))
                        .collect();
                }
            }
            Scaling::Standard => {
                let (mut sum, mut squares) = (vec![0u64; d], vec![0u64; d]);
                for row in values.chunks_exact(d.max(1)) {
                    for ((s, q), &b) in sum.iter_mut().zip(squares.iter_mut()).zip(row) {
                        *s += u64::from(b);
                        *q += u64::from(b) * u64::from(b);
                    }
                }
                let n = train.len().max(1) as u128;
                p.center = sum.iter().map(|&s| s as f64 / n as f64).collect();
                // Population variance (n·Σb² − (Σb)²) / n², exact in integers up to the division.
                p.scale = sum
                    .iter()
                    .zip(&squares)
                    .map(|(&s, &q)| {
                        let num = n * u128::from(q) - u128::from(s) * u128::from(s);
                        safe((num as f64 / (n * n) as f64).sqrt())
                    })
                    .collect();
            }
        }
        Ok(p)
    }

    /// Network inputs per sample.
    pub fn inputs(&self) -> usize {
        self.features.len()
    }

    /// `(x − center) / scale` for one encoded row, computed in f64 and stored as f32.
    pub fn normalise(&self, encoded: &[f64], out: &mut [f32]) {
        for (((o, &x), &c), &s) in out
            .iter_mut()
            .zip(encoded)
            .zip(&self.center)
            .zip(&self.scale)
        {
            *o = ((x - c) / s) as f32;
        }
    }
}

/// `(center, scale)` of `values` under `scaling`, in f64. A constant column (or one with a
/// spread that is not a positive finite number) gets scale 1, so nothing is divided by 0.
pub fn fit_column(values: impl Iterator<Item = f64> + Clone, scaling: Scaling) -> (f64, f64) {
    let safe = |s: f64| if s.is_finite() && s > 0.0 { s } else { 1.0 };
    match scaling {
        Scaling::None => (0.0, 1.0),
        Scaling::Pixels => (0.0, 255.0),
        Scaling::MinMax => {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            if lo.is_finite() {
                (lo, safe(hi - lo))
            } else {
                (0.0, 1.0)
            }
        }
        Scaling::Standard => {
            let (n, sum) = values
                .clone()
                .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v));
            if n == 0 {
                return (0.0, 1.0);
            }
            let mean = sum / n as f64;
            let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            (mean, safe(var.sqrt()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_huge_columns_give_finite_scalings() {
        assert_eq!(
            fit_column([3.0, 3.0].into_iter(), Scaling::Standard),
            (3.0, 1.0)
        );
        assert_eq!(fit_column([3.0].into_iter(), Scaling::MinMax), (3.0, 1.0));
        let (c, s) = fit_column([3e38, -3e38, 0.0].into_iter(), Scaling::Standard);
        assert!(c.is_finite() && s.is_finite() && s > 0.0);
        let (c, s) = fit_column([3e38, -3e38].into_iter(), Scaling::MinMax);
        assert_eq!((c, s), (-3e38, 6e38));
    }

    #[test]
    fn pixel_scalings_match_fit_column_and_rescale_the_bytes() {
        // 5 images of 3 pixels: one varying, one constant, one 0/255.
        let bytes: Vec<u8> = vec![10, 7, 0, 20, 7, 255, 30, 7, 0, 40, 7, 255, 250, 7, 0];
        let train = Dataset::new(
            "images",
            Features::U8 {
                values: bytes.clone(),
                scale: 1.0 / 255.0,
            },
            3,
            vec![0, 1, 0, 1, 0],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        for scaling in [
            Scaling::Standard,
            Scaling::MinMax,
            Scaling::None,
            Scaling::Pixels,
        ] {
            let p = Preprocess::pixels_fitted(&train, scaling).unwrap();
            assert_eq!(p.scaling, scaling);
            for j in 0..3 {
                let column = bytes.iter().skip(j).step_by(3).map(|&b| f64::from(b));
                let (c, s) = fit_column(column, scaling);
                assert!((p.center[j] - c).abs() < 1e-9, "{scaling:?} pixel {j}");
                assert!((p.scale[j] - s).abs() < 1e-9, "{scaling:?} pixel {j}");
            }
            // The rescaled dataset reads exactly what a saved model computes from raw bytes.
            let scaled = train.clone().rescale_bytes(&p.center, &p.scale).unwrap();
            let mut got = vec![0.0f32; 15];
            scaled.gather(&[0, 1, 2, 3, 4], &mut got);
            let mut want = vec![0.0f32; 3];
            for (r, row) in bytes.chunks(3).enumerate() {
                let encoded: Vec<f64> = row.iter().map(|&b| f64::from(b)).collect();
                p.normalise(&encoded, &mut want);
                for j in 0..3 {
                    assert!(
                        (got[r * 3 + j] - want[j]).abs() < 1e-6,
                        "{scaling:?} [{r},{j}]"
                    );
                }
            }
        }
        // The constant pixel keeps scale 1 instead of dividing by 0.
        let p = Preprocess::pixels_fitted(&train, Scaling::Standard).unwrap();
        assert_eq!((p.center[1], p.scale[1]), (7.0, 1.0));
    }
}
