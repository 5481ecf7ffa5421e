//! [`Loss`]: what training minimises, as a value handed to the trainer. Each loss knows which
//! targets it reads from a dataset (class labels or numbers), how it is recorded on the tape and
//! what its quality measures are (accuracy; MAE, RMSE and R²).
//!
//! - Cross-entropy from logits: `L = −log softmax(z)_y`, fused with the softmax and computed
//!   with log-sum-exp so it never overflows; its backward is `(p − y)/batch`.
//! - Mean squared error: `L = mean (ŷ − t)²` on the standardised target.

use crate::autograd::{Tape, Var};
use crate::data::Dataset;
use crate::error::NablaError;
use crate::kernels::softmax::argmax;
use crate::task::Task;

/// A loss function over a network's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy from the class scores (logits), against class labels.
    CrossEntropy,
    /// Mean squared error of one output against a numeric target.
    Mse,
}

/// Reusable buffers for gathering targets, so a training step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    labels: Vec<u32>,
    values: Vec<f32>,
}

impl Loss {
    /// The usual loss for `task`: cross-entropy for classification, MSE for regression.
    pub fn for_task(task: Task) -> Self {
        match task {
            Task::Classification => Loss::CrossEntropy,
            Task::Regression => Loss::Mse,
        }
    }

    /// The kind of dataset this loss reads: class labels or numbers.
    pub fn task(self) -> Task {
        match self {
            Loss::CrossEntropy => Task::Classification,
            Loss::Mse => Task::Regression,
        }
    }

    /// Its name in words.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross-entropy",
            Loss::Mse => "mean squared error",
        }
    }

    /// Checks that a network of `outputs` values fits this loss on `data`.
    pub fn check(self, outputs: usize, data: &Dataset) -> Result<(), NablaError> {
        if data.task() != self.task() {
            return Err(NablaError::Usage(format!(
                "{}: a {} dataset, but the loss is {} ({})",
                data.name(),
                data.task().name(),
                self.name(),
                self.task().name()
            )));
        }
        match self {
            Loss::Mse if outputs != 1 => Err(NablaError::Usage(format!(
                "regression needs one output, the model has {outputs}"
            ))),
            Loss::CrossEntropy if data.classes().len() > outputs => {
                Err(NablaError::Usage(format!(
                    "{}: {} classes, the model has {outputs} outputs",
                    data.name(),
                    data.classes().len()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Records the mean loss of the outputs `out` against rows `rows` of `data` on `tape`.
    pub fn record(
        self,
        tape: &mut Tape,
        out: Var,
        data: &Dataset,
        rows: &[usize],
        targets: &mut Targets,
    ) -> Result<Var, NablaError> {
        match self {
            Loss::CrossEntropy => {
                data.gather_labels(rows, &mut targets.labels);
                tape.softmax_cross_entropy(out, &targets.labels)
            }
            Loss::Mse => {
                targets.values.clear();
                targets.values.resize(rows.len(), 0.0);
                data.gather_targets(rows, &mut targets.values);
                let t = tape.input_with(rows.len(), 1, |buf| buf.copy_from_slice(&targets.values));
                tape.mse(out, t)
            }
        }
    }

    /// Rows whose highest score is their label, after [`Loss::record`] with the same `targets`
    /// (cross-entropy; 0 for other losses).
    pub fn correct(self, outputs: &[f32], targets: &Targets) -> usize {
        match self {
            Loss::CrossEntropy => count_correct(outputs, &targets.labels),
            Loss::Mse => 0,
        }
    }

    /// Sums over the rows of the last [`Loss::record`] that evaluation adds up across chunks:
    /// `[loss·rows, correct, 0, 0]` for cross-entropy, `[loss·rows, Σ|e|, Σe², Σ(t − t̄)²]` (in
    /// the target's units: `e = scale·(ŷ − t)`) for MSE.
    pub fn chunk_sums(
        self,
        loss: f32,
        outputs: &[f32],
        targets: &Targets,
        (mean_t, scale): (f64, f64),
    ) -> [f64; 4] {
        match self {
            Loss::CrossEntropy => {
                let rows = targets.labels.len() as f64;
                let correct = count_correct(outputs, &targets.labels) as f64;
                [f64::from(loss) * rows, correct, 0.0, 0.0]
            }
            Loss::Mse => {
                let (mut sae, mut sse, mut sst) = (0.0f64, 0.0f64, 0.0f64);
                for (&p, &t) in outputs.iter().zip(&targets.values) {
                    let err = (f64::from(p) - f64::from(t)) * scale;
                    sae += err.abs();
                    sse += err * err;
                    let dev = (f64::from(t) - mean_t) * scale;
                    sst += dev * dev;
                }
                let rows = targets.values.len() as f64;
                [f64::from(loss) * rows, sae, sse, sst]
            }
        }
    }
}

fn count_correct(logits: &[f32], labels: &[u32]) -> usize {
    let classes = logits.len() / labels.len().max(1);
    if classes == 0 {
        return 0;
    }
    logits
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, l)| argmax(row) == **l as usize)
        .count()
}
