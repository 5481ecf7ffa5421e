//! Adam (Kingma & Ba, 2015) as PyTorch's `torch.optim.Adam` defines it, and AdamW (Loshchilov &
//! Hutter, 2019) with decoupled weight decay:
//!
//! ```text
//! AdamW only: θ ← θ·(1 − lr·λ)          Adam only: g ← g + λ·θ   (L2)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! θ ← θ − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
//! ```

use super::{GradSources, ensure_state, for_each_chunk};
use crate::simd::{self, update, update::AdamCoefficients};
use crate::tensor::Tensor;

/// Adam or AdamW.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate (0.001 is the usual default).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// Weight decay `λ` (default 0).
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of L2 in the gradient (Adam).
    pub decoupled: bool,
    /// Per element `[m, v]`, interleaved so one chunk of state matches one chunk of params.
    moments: Vec<Vec<f32>>,
    t: u32,
}

impl Adam {
    /// The state for a checkpoint: moment buffers and the step count `t`.
    pub(super) fn state_parts(&self) -> (Vec<Vec<f32>>, u64) {
        (self.moments.clone(), u64::from(self.t))
    }

    /// The state buffers, to share between ranks that update disjoint chunks.
    pub(super) fn buffers_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.moments
    }

    /// Restores [`Adam::state_parts`].
    pub(super) fn set_state_parts(&mut self, buffers: Vec<Vec<f32>>, counter: u64) {
        self.moments = buffers;
        self.t = u32::try_from(counter).unwrap_or(u32::MAX);
    }

    /// Adam with learning rate `lr` and PyTorch's defaults otherwise.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            moments: Vec::new(),
            t: 0,
        }
    }

    /// AdamW with learning rate `lr` and decoupled weight decay `weight_decay`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            decoupled: true,
            ..Self::new(lr)
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One update of every parameter (chunks in parallel on the current rayon pool if
    /// `parallel`).
    pub(crate) fn step(&mut self, params: &mut [Tensor], grads: GradSources, parallel: bool) {
        ensure_state(&mut self.moments, params, 2);
        self.t += 1;
        // Coefficients in f64 first (1 − β is exact there, as in PyTorch), then f32.
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        let c = AdamCoefficients {
            b1: self.beta1 as f32,
            b2: self.beta2 as f32,
            one_minus_b1: (1.0 - self.beta1) as f32,
            one_minus_b2: (1.0 - self.beta2) as f32,
            eps: self.eps as f32,
            wd: self.weight_decay as f32,
            decay: (1.0 - self.lr * self.weight_decay) as f32,
            decoupled: self.decoupled,
            step_size: (self.lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
        };
        let level = simd::level();
        for_each_chunk(params, grads, &mut self.moments, 2, parallel, |p, g, mv| {
            update::adam(level, p, g, mv, &c)
        });
    }
}
