//! `Dataset`: samples as rows of features, each with a class label (classification) or a real
//! target (regression).

use crate::error::NablaError;
use crate::task::Task;

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

impl Features {
    /// Checks that `n` samples of `dim` features are stored.
    fn check_size(&self, n: usize, dim: usize) -> Result<(), NablaError> {
        let stored = match self {
            Features::U8 { values, .. } => values.len(),
            Features::F32(values) => values.len(),
        };
        if n.checked_mul(dim) != Some(stored) {
            return Err(NablaError::Shape(format!(
                "{n} samples × {dim} features needs {} values, got {stored}",
                n.saturating_mul(dim)
            )));
        }
        Ok(())
    }
}

/// A labelled dataset: for classification, a class index per sample (`labels`, `classes`); for
/// regression, a standardised real target per sample (`targets`) with the `center` and `scale`
/// that map it back to the file's units (`y = center + scale · target`).
#[derive(Clone, Debug)]
pub struct Dataset {
    name: String,
    features: Features,
    n: usize,
    dim: usize,
    labels: Vec<u32>,
    classes: Vec<String>,
    targets: Vec<f32>,
    target_center: f64,
    target_scale: f64,
    task: Task,
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
        features.check_size(n, dim)?;
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
            targets: Vec::new(),
            target_center: 0.0,
            target_scale: 1.0,
            task: Task::Classification,
        })
    }

    /// A regression dataset of `targets.len()` samples. `targets` are standardised values;
    /// `center + scale · target` gives the file's units back.
    pub fn regression(
        name: impl Into<String>,
        features: Features,
        dim: usize,
        targets: Vec<f32>,
        center: f64,
        scale: f64,
    ) -> Result<Self, NablaError> {
        let n = targets.len();
        features.check_size(n, dim)?;
        Ok(Self {
            name: name.into(),
            features,
            n,
            dim,
            labels: Vec::new(),
            classes: Vec::new(),
            targets,
            target_center: center,
            target_scale: scale,
            task: Task::Regression,
        })
    }

    /// Classification or regression.
    pub fn task(&self) -> Task {
        self.task
    }

    /// Standardised regression targets (empty for classification).
    pub fn targets(&self) -> &[f32] {
        &self.targets
    }

    /// `(center, scale)` mapping a standardised target back to the file's units.
    pub fn target_scaling(&self) -> (f64, f64) {
        (self.target_center, self.target_scale)
    }

    /// Standardised targets of samples `indices`, written to `out`.
    pub fn gather_targets(&self, indices: &[usize], out: &mut [f32]) {
        for (o, &i) in out.iter_mut().zip(indices) {
            *o = self.targets[i];
        }
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
        let level = crate::simd::level();
        for (row, &i) in out.chunks_exact_mut(d.max(1)).zip(indices) {
            match &self.features {
                Features::U8 { values, scale } => {
                    crate::simd::elementwise::u8_to_f32(
                        level,
                        &values[i * d..(i + 1) * d],
                        *scale,
                        row,
                    );
                }
                Features::F32(values) => row.copy_from_slice(&values[i * d..(i + 1) * d]),
            }
        }
    }

    /// For image data (bytes), the same samples with each byte `b` of feature `j` read as
    /// `(b − center[j]) / scale[j]`, the preprocessing a saved model applies to raw pixels. A
    /// center of 0 and one scale for every feature keeps the bytes (read factor `1/scale`);
    /// anything else is stored as `f32` (4× the memory).
    pub fn rescale_bytes(self, center: &[f64], scale: &[f64]) -> Result<Dataset, NablaError> {
        if center.len() != self.dim || scale.len() != self.dim {
            return Err(NablaError::Shape(format!(
                "{} features, but {} centers and {} scales",
                self.dim,
                center.len(),
                scale.len()
            )));
        }
        let shared = scale.first().copied().unwrap_or(1.0);
        let keep = center.iter().all(|&c| c == 0.0) && scale.iter().all(|&s| s == shared);
        let features = match self.features {
            Features::U8 { values, .. } if keep => Features::U8 {
                values,
                scale: (1.0 / shared) as f32,
            },
            Features::U8 { values, .. } => {
                let mut out = Vec::with_capacity(values.len());
                for row in values.chunks_exact(self.dim.max(1)) {
                    out.extend(
                        row.iter()
                            .zip(center.iter().zip(scale))
                            .map(|(&b, (&c, &s))| ((f64::from(b) - c) / s) as f32),
                    );
                }
                Features::F32(out)
            }
            Features::F32(_) => {
                return Err(NablaError::Usage(format!(
                    "{}: only image (byte) features can be rescaled",
                    self.name
                )));
            }
        };
        Ok(Dataset { features, ..self })
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
            labels: if self.labels.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.labels[i]).collect()
            },
            classes: self.classes.clone(),
            targets: if self.targets.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.targets[i]).collect()
            },
            target_center: self.target_center,
            target_scale: self.target_scale,
            task: self.task,
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
