//! `Dataset`: samples as rows of features, each with a class label.

use crate::error::NablaError;

/// Feature storage. Image pixels stay as bytes (4× less memory) and are scaled as they are
/// gathered into a batch; other data is `f32`.
#[derive(Clone, Debug)]
pub enum Features {
    /// Bytes, each multiplied by `scale` when read (1/255 for IDX pixels).
    U8 {
        /// `n × dim` bytes, row-major.
        values: Vec<u8>,
        /// Factor applied on read.
        scale: f32,
    },
    /// `n × dim` floats, row-major.
    F32(Vec<f32>),
}

/// A labelled dataset for classification.
#[derive(Clone, Debug)]
pub struct Dataset {
    name: String,
    features: Features,
    n: usize,
    dim: usize,
    labels: Vec<u32>,
    classes: Vec<String>,
}

impl Dataset {
    /// A dataset of `labels.len()` samples; checks that the sizes agree and every label names a
    /// class.
    pub fn new(
        name: impl Into<String>,
        features: Features,
        dim: usize,
        labels: Vec<u32>,
        classes: Vec<String>,
    ) -> Result<Self, NablaError> {
        let n = labels.len();
        let stored = match &features {
            Features::U8 { values, .. } => values.len(),
            Features::F32(values) => values.len(),
        };
        if n.checked_mul(dim) != Some(stored) {
            return Err(NablaError::Shape(format!(
                "{n} samples × {dim} features needs {} values, got {stored}",
                n.saturating_mul(dim)
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes.len()) {
            return Err(NablaError::Shape(format!(
                "label {bad} but only {} classes",
                classes.len()
            )));
        }
        Ok(Self {
            name: name.into(),
            features,
            n,
            dim,
            labels,
            classes,
        })
    }

    /// A short name for reports (`digits`, a path, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Features per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Class index of every sample.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Class names, indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The feature storage.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Writes the features of samples `indices` as consecutive rows of `out`
    /// (`indices.len() × dim`), converting bytes to scaled `f32` on the way.
    pub fn gather(&self, indices: &[usize], out: &mut [f32]) {
        let d = self.dim;
        for (row, &i) in out.chunks_exact_mut(d.max(1)).zip(indices) {
            match &self.features {
                Features::U8 { values, scale } => {
                    for (o, &b) in row.iter_mut().zip(&values[i * d..(i + 1) * d]) {
                        *o = b as f32 * scale;
                    }
                }
                Features::F32(values) => row.copy_from_slice(&values[i * d..(i + 1) * d]),
            }
        }
    }

    /// Labels of samples `indices`, appended to `out` (cleared first).
    pub fn gather_labels(&self, indices: &[usize], out: &mut Vec<u32>) {
        out.clear();
        out.extend(indices.iter().map(|&i| self.labels[i]));
    }

    /// A new dataset holding samples `indices`, in that order.
    pub fn subset(&self, indices: &[usize], name: impl Into<String>) -> Dataset {
        let d = self.dim;
        let features = match &self.features {
            Features::U8 { values, scale } => Features::U8 {
                values: indices
                    .iter()
                    .flat_map(|&i| &values[i * d..(i + 1) * d])
                    .copied()
                    .collect(),
                scale: *scale,
            },
            Features::F32(values) => Features::F32(
                indices
                    .iter()
                    .flat_map(|&i| &values[i * d..(i + 1) * d])
                    .copied()
                    .collect(),
            ),
        };
        Dataset {
            name: name.into(),
            features,
            n: indices.len(),
            dim: d,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// Number of samples in each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
