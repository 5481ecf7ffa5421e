//! Adagrad (Duchi et al., 2011) as PyTorch's `torch.optim.Adagrad` defines it (no lr decay,
//! initial accumulator 0):
//!
//! ```text
//! g ← ∂L/∂θ + λ·θ
//! s ← s + g²
//! θ ← θ − lr·g / (sqrt(s) + ε)
//! ```

use super::{GradSources, ensure_state, for_each_chunk};
use crate::tensor::Tensor;

/// Adagrad.
#[derive(Clone, Debug)]
pub struct Adagrad {
    /// Learning rate (PyTorch's default 0.01).
    pub lr: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
    /// L2 weight decay `λ` (default 0).
    pub weight_decay: f64,
    sum: Vec<Vec<f32>>,
}

impl Adagrad {
    /// The state for a checkpoint: the running sums of squared gradients.
    pub(super) fn state_parts(&self) -> (Vec<Vec<f32>>, u64) {
        (self.sum.clone(), 0)
    }

    /// The state buffers, to share between ranks that update disjoint chunks.
    pub(super) fn buffers_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.sum
    }

    /// Restores [`Adagrad::state_parts`].
    pub(super) fn set_state_parts(&mut self, buffers: Vec<Vec<f32>>, _counter: u64) {
        self.sum = buffers;
    }

    /// Adagrad with learning rate `lr` and PyTorch's defaults otherwise.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            eps: 1e-10,
            weight_decay: 0.0,
            sum: Vec::new(),
        }
    }

    /// One update of every parameter from the summed gradients.
    pub(crate) fn step(&mut self, params: &mut [Tensor], grads: GradSources, parallel: bool) {
        ensure_state(&mut self.sum, params, 1);
        let (lr, eps, wd) = (self.lr as f32, self.eps as f32, self.weight_decay as f32);
        for_each_chunk(params, grads, &mut self.sum, 1, parallel, |p, g, s| {
            for ((pv, &gv), sv) in p.iter_mut().zip(g).zip(s.iter_mut()) {
                let gv = gv + wd * *pv;
                *sv += gv * gv;
                *pv -= lr * gv / (sv.sqrt() + eps);
            }
        });
    }
}
