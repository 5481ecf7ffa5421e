//! Optimizer updates over one chunk of a parameter, its summed gradient and its state: the
//! formulas of [`crate::optim::Adam`] and [`crate::optim::Sgd`] element by element, vectorised
//! at the [`super::Level`] given. Operations are those of the scalar formulas in the same order
//! (no fused multiply-add; `sqrt` and `/` are exactly rounded in every instruction set), so
//! every level gives the same bits.

/// Adam's per-step coefficients, already rounded to `f32`.
#[derive(Clone, Copy, Debug)]
pub struct AdamCoefficients {
    /// β1.
    pub b1: f32,
    /// β2.
    pub b2: f32,
    /// 1 − β1 (formed in f64).
    pub one_minus_b1: f32,
    /// 1 − β2 (formed in f64).
    pub one_minus_b2: f32,
    /// ε.
    pub eps: f32,
    /// L2 weight decay λ (Adam).
    pub wd: f32,
    /// 1 − lr·λ (AdamW).
    pub decay: f32,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
    /// lr / (1 − β1^t).
    pub step_size: f32,
    /// √(1 − β2^t).
    pub bc2_sqrt: f32,
}

multiversion! {
    /// One Adam/AdamW step: `mv` holds `[m, v]` per element, interleaved.
    pub fn adam(p: &mut [f32], g: &[f32], mv: &mut [f32], c: &AdamCoefficients) => adam_body
}

#[inline(always)]
fn adam_body(p: &mut [f32], g: &[f32], mv: &mut [f32], c: &AdamCoefficients) {
    let c = *c;
    for ((pv, &gv), mv) in p.iter_mut().zip(g).zip(mv.chunks_exact_mut(2)) {
        let gv = if c.decoupled {
            *pv *= c.decay;
            gv
        } else {
            gv + c.wd * *pv
        };
        let m = c.b1 * mv[0] + c.one_minus_b1 * gv;
        let v = c.b2 * mv[1] + c.one_minus_b2 * gv * gv;
        mv[0] = m;
        mv[1] = v;
        *pv -= c.step_size * m / (v.sqrt() / c.bc2_sqrt + c.eps);
    }
}

/// SGD's per-step coefficients, already rounded to `f32`.
#[derive(Clone, Copy, Debug)]
pub struct SgdCoefficients {
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ (0: none).
    pub mu: f32,
    /// L2 weight decay λ.
    pub wd: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// False at the first step (the velocity starts as the gradient).
    pub started: bool,
}

multiversion! {
    /// One SGD step; `b` is the velocity (empty when μ = 0).
    pub fn sgd(p: &mut [f32], g: &[f32], b: &mut [f32], c: &SgdCoefficients) => sgd_body
}

#[inline(always)]
fn sgd_body(p: &mut [f32], g: &[f32], b: &mut [f32], c: &SgdCoefficients) {
    let SgdCoefficients {
        lr,
        mu,
        wd,
        nesterov,
        started,
    } = *c;
    if mu == 0.0 {
        for (pv, &gv) in p.iter_mut().zip(g) {
            *pv -= lr * (gv + wd * *pv);
        }
    } else if !started {
        for ((pv, &gv), bv) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let d = gv + wd * *pv;
            *bv = d;
            *pv -= lr * if nesterov { d + mu * d } else { d };
        }
    } else {
        for ((pv, &gv), bv) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let d = gv + wd * *pv;
            *bv = mu * *bv + d;
            *pv -= lr * if nesterov { d + mu * *bv } else { *bv };
        }
    }
}
