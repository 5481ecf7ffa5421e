//! Stochastic gradient descent, as PyTorch's `torch.optim.SGD` defines it:
//!
//! ```text
//! g ← ∂L/∂θ + λ·θ                        (weight decay λ, L2)
//! b ← g                  at the first step,
//! b ← μ·b + g            afterwards       (momentum μ; skipped when μ = 0)
//! g ← g + μ·b  (Nesterov)  or  g ← b
//! θ ← θ − lr·g
//! ```

use super::ensure_state;
use crate::tensor::Tensor;

/// SGD with optional momentum, Nesterov momentum and weight decay.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate `lr`.
    pub lr: f32,
    /// Momentum `μ` (0 disables it; 0.9 is the usual choice).
    pub momentum: f32,
    /// Use Nesterov momentum (default false).
    pub nesterov: bool,
    /// L2 weight decay `λ` (default 0).
    pub weight_decay: f32,
    velocity: Vec<Vec<f32>>,
    started: bool,
}

impl Sgd {
    /// SGD with learning rate `lr` and momentum `momentum`.
    pub fn new(lr: f32, momentum: f32) -> Self {
        Self {
            lr,
            momentum,
            nesterov: false,
            weight_decay: 0.0,
            velocity: Vec::new(),
            started: false,
        }
    }

    /// One update of every parameter.
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) {
        let (lr, mu, wd) = (self.lr, self.momentum, self.weight_decay);
        if mu != 0.0 {
            ensure_state(&mut self.velocity, params);
        }
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = p.data_mut();
            let g = g.data();
            if mu == 0.0 {
                for (pv, &gv) in p.iter_mut().zip(g) {
                    *pv -= lr * (gv + wd * *pv);
                }
                continue;
            }
            let b = &mut self.velocity[i];
            for ((pv, &gv), bv) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = gv + wd * *pv;
                *bv = if self.started { mu * *bv + d } else { d };
                let step = if self.nesterov { d + mu * *bv } else { *bv };
                *pv -= lr * step;
            }
        }
        self.started = true;
    }
}
