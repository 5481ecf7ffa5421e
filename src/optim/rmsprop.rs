//! RMSprop (Hinton, 2012) as PyTorch's `torch.optim.RMSprop` defines it (not centred):
//!
//! ```text
//! g ← ∂L/∂θ + λ·θ
//! v ← α·v + (1 − α)·g²
//! b ← μ·b + g / (sqrt(v) + ε);  θ ← θ − lr·b        (momentum μ > 0)
//! θ ← θ − lr·g / (sqrt(v) + ε)                       (μ = 0)
//! ```

use super::{GradSources, ensure_state, for_each_chunk};
use crate::tensor::Tensor;

/// RMSprop.
#[derive(Clone, Debug)]
pub struct RmsProp {
    /// Learning rate (PyTorch's default 0.01).
    pub lr: f64,
    /// Smoothing constant `α` (default 0.99).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Momentum `μ` (default 0).
    pub momentum: f64,
    /// L2 weight decay `λ` (default 0).
    pub weight_decay: f64,
    /// Per element `[v, b]`.
    state: Vec<Vec<f32>>,
}

impl RmsProp {
    /// The state for a checkpoint: the `[v, b]` buffers.
    pub(super) fn state_parts(&self) -> (Vec<Vec<f32>>, u64) {
        (self.state.clone(), 0)
    }

    /// The state buffers, to share between ranks that update disjoint chunks.
    pub(super) fn buffers_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.state
    }

    /// Restores [`RmsProp::state_parts`].
    pub(super) fn set_state_parts(&mut self, buffers: Vec<Vec<f32>>, _counter: u64) {
        self.state = buffers;
    }

    /// RMSprop with learning rate `lr` and PyTorch's defaults otherwise.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
            state: Vec::new(),
        }
    }

    /// One update of every parameter from the summed gradients.
    pub(crate) fn step(&mut self, params: &mut [Tensor], grads: GradSources, parallel: bool) {
        ensure_state(&mut self.state, params, 2);
        // Coefficients in f64 first (1 − α is exact there, as in PyTorch), then f32.
        let (lr, alpha, eps, mu, wd) = (
            self.lr as f32,
            self.alpha as f32,
            self.eps as f32,
            self.momentum as f32,
            self.weight_decay as f32,
        );
        let one_minus_alpha = (1.0 - self.alpha) as f32;
        for_each_chunk(params, grads, &mut self.state, 2, parallel, |p, g, s| {
            for ((pv, &gv), s) in p.iter_mut().zip(g).zip(s.chunks_exact_mut(2)) {
                let gv = gv + wd * *pv;
                s[0] = alpha * s[0] + one_minus_alpha * gv * gv;
                let step = gv / (s[0].sqrt() + eps);
                if mu > 0.0 {
                    s[1] = mu * s[1] + step;
                    *pv -= lr * s[1];
                } else {
                    *pv -= lr * step;
                }
            }
        });
    }
}
