//! Adam (Kingma & Ba, 2015) as PyTorch's `torch.optim.Adam` defines it, and AdamW (Loshchilov &
//! Hutter, 2019) with decoupled weight decay:
//!
//! ```text
//! AdamW only: θ ← θ·(1 − lr·λ)          Adam only: g ← g + λ·θ   (L2)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! θ ← θ − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
//! ```

use super::ensure_state;
use crate::tensor::Tensor;

/// Adam or AdamW.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate (0.001 is the usual default).
    pub lr: f32,
    /// Decay of the first moment (default 0.9).
    pub beta1: f32,
    /// Decay of the second moment (default 0.999).
    pub beta2: f32,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f32,
    /// Weight decay `λ` (default 0).
    pub weight_decay: f32,
    /// Decoupled weight decay (AdamW) instead of L2 in the gradient (Adam).
    pub decoupled: bool,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: u32,
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults otherwise.
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// AdamW with learning rate `lr` and decoupled weight decay `weight_decay`.
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
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

    /// One update of every parameter.
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) {
        ensure_state(&mut self.m, params);
        ensure_state(&mut self.v, params);
        self.t += 1;
        let (b1, b2, eps, lr, wd) = (self.beta1, self.beta2, self.eps, self.lr, self.weight_decay);
        let bc1 = 1.0 - (b1 as f64).powi(self.t as i32);
        let bc2 = 1.0 - (b2 as f64).powi(self.t as i32);
        let step_size = (lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for (((pv, &gv), mv), vv) in p
                .data_mut()
                .iter_mut()
                .zip(g.data())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                let gv = if self.decoupled {
                    *pv *= 1.0 - lr * wd;
                    gv
                } else {
                    gv + wd * *pv
                };
                *mv = b1 * *mv + (1.0 - b1) * gv;
                *vv = b2 * *vv + (1.0 - b2) * gv * gv;
                *pv -= step_size * *mv / (vv.sqrt() / bc2_sqrt + eps);
            }
        }
    }
}
