//! Stochastic gradient descent, as PyTorch's `torch.optim.SGD` defines it:
//!
//! ```text
//! g ← ∂L/∂θ + λ·θ                        (weight decay λ, L2)
//! b ← g                  at the first step,
//! b ← μ·b + g            afterwards       (momentum μ; skipped when μ = 0)
//! g ← g + μ·b  (Nesterov)  or  g ← b
//! θ ← θ − lr·g
//! ```

use super::{GradSources, ensure_state, for_each_chunk};
use crate::simd::{self, update, update::SgdCoefficients};
use crate::tensor::Tensor;

/// SGD with optional momentum, Nesterov momentum and weight decay.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate `lr`.
    pub lr: f64,
    /// Momentum `μ` (0 disables it; 0.9 is the usual choice).
    pub momentum: f64,
    /// Use Nesterov momentum (default false).
    pub nesterov: bool,
    /// L2 weight decay `λ` (default 0).
    pub weight_decay: f64,
    velocity: Vec<Vec<f32>>,
    started: bool,
}

impl Sgd {
    /// The state for a checkpoint: velocity buffers, and 1 once the first step was taken.
    pub(super) fn state_parts(&self) -> (Vec<Vec<f32>>, u64) {
        (self.velocity.clone(), u64::from(self.started))
    }

    /// The state buffers, to share between ranks that update disjoint chunks.
    pub(super) fn buffers_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.velocity
    }

    /// Restores [`Sgd::state_parts`].
    pub(super) fn set_state_parts(&mut self, buffers: Vec<Vec<f32>>, counter: u64) {
        self.velocity = buffers;
        self.started = counter > 0;
    }

    /// SGD with learning rate `lr` and momentum `momentum`.
    pub fn new(lr: f64, momentum: f64) -> Self {
        Self {
            lr,
            momentum,
            nesterov: false,
            weight_decay: 0.0,
            velocity: Vec::new(),
            started: false,
        }
    }

    /// One update of every parameter (chunks in parallel on the current rayon pool if
    /// `parallel`).
    pub(crate) fn step(&mut self, params: &mut [Tensor], grads: GradSources, parallel: bool) {
        let c = SgdCoefficients {
            lr: self.lr as f32,
            mu: self.momentum as f32,
            wd: self.weight_decay as f32,
            nesterov: self.nesterov,
            started: self.started,
        };
        let width = usize::from(c.mu != 0.0);
        ensure_state(&mut self.velocity, params, width);
        let level = simd::level();
        for_each_chunk(
            params,
            grads,
            &mut self.velocity,
            width,
            parallel,
            |p, g, b| update::sgd(level, p, g, b, &c),
        );
        self.started = true;
    }
}
