//! Layer normalisation over the last axis of a tensor of any rank (PyTorch's
//! `nn.LayerNorm(d)`): per row, `x̂ = (x − μ) / √(σ² + ε)` with the population variance, then
//! `y = γ ⊙ x̂ + β`.
//!
//! Backward per row, with `h = G ⊙ γ` and `r = 1/√(σ² + ε)`:
//! `∂L/∂x = r · (h − mean(h) − x̂ · mean(h ⊙ x̂))`, `∂L/∂γ = Σ_rows G ⊙ x̂`, `∂L/∂β = Σ_rows G`
//! (the rows summed in order).

use crate::autograd::custom::{Backward, CustomOp};
use crate::autograd::tape::{Tape, Var};
use crate::error::NablaError;
use crate::tensor::Tensor;

/// Layer norm over the last axis with learned scale `γ` and shift `β` (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    eps: f32,
}

impl CustomOp for LayerNorm {
    fn name(&self) -> &str {
        "layer_norm"
    }

    fn forward(
        &self,
        x: &[&Tensor],
        out: &mut Tensor,
        saved: &mut Vec<Tensor>,
    ) -> Result<(), NablaError> {
        let (xt, gamma, beta) = (x[0], x[1].data(), x[2].data());
        let d = xt.cols();
        if gamma.len() != d || beta.len() != d {
            return Err(NablaError::Shape(format!(
                "layer_norm: input {:?} needs γ and β of {d} values, got {:?} and {:?}",
                xt.dims(),
                x[1].dims(),
                x[2].dims()
            )));
        }
        out.reset_for_overwrite(xt.dims_value());
        let mut xhat = Tensor::zeros_dims(xt.dims_value());
        let mut rstd = Tensor::zeros(xt.rows(), 1);
        if d == 0 {
            saved.extend([xhat, rstd]);
            return Ok(());
        }
        let rows = xt
            .data()
            .chunks_exact(d)
            .zip(xhat.data_mut().chunks_exact_mut(d));
        for ((row, (xr, hr)), yr) in rows.enumerate().zip(out.data_mut().chunks_exact_mut(d)) {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let r = (1.0 / (var + self.eps as f64).sqrt()) as f32;
            rstd.data_mut()[row] = r;
            for (i, (&v, h)) in xr.iter().zip(hr.iter_mut()).enumerate() {
                *h = (v - mean as f32) * r;
                yr[i] = gamma[i] * *h + beta[i];
            }
        }
        saved.extend([xhat, rstd]);
        Ok(())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Vec<Option<Tensor>>, NablaError> {
        let (x, gamma) = (b.inputs[0], b.inputs[1].data());
        let (xhat, rstd, g) = (b.saved[0].data(), b.saved[1].data(), b.upstream.data());
        let d = x.cols();
        let mut dx = Tensor::zeros_dims(x.dims_value());
        let mut dgamma = Tensor::zeros_dims(b.inputs[1].dims_value());
        let mut dbeta = Tensor::zeros_dims(b.inputs[2].dims_value());
        if d == 0 {
            return Ok(vec![Some(dx), Some(dgamma), Some(dbeta)]);
        }
        let rows = g.chunks_exact(d).zip(xhat.chunks_exact(d));
        for (row, ((gr, hr), dr)) in rows.zip(dx.data_mut().chunks_exact_mut(d)).enumerate() {
            let (mut mean_h, mut mean_hx) = (0f64, 0f64);
            for i in 0..d {
                let h = (gr[i] * gamma[i]) as f64;
                mean_h += h;
                mean_hx += h * hr[i] as f64;
                dgamma.data_mut()[i] += gr[i] * hr[i];
                dbeta.data_mut()[i] += gr[i];
            }
            let (mean_h, mean_hx) = ((mean_h / d as f64) as f32, (mean_hx / d as f64) as f32);
            for i in 0..d {
                dr[i] = rstd[row] * (gr[i] * gamma[i] - mean_h - hr[i] * mean_hx);
            }
        }
        Ok(vec![Some(dx), Some(dgamma), Some(dbeta)])
    }
}

impl Tape<'_> {
    /// Layer norm of `x` over its last axis (`d` values per row, any rank) with scale `gamma`
    /// and shift `beta` of `d` values each; `eps` (PyTorch's default 1e-5) must be positive.
    pub fn layer_norm(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<Var, NablaError> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(NablaError::Usage(format!(
                "layer_norm: eps must be a positive number, got {eps}"
            )));
        }
        self.custom(LayerNorm { eps }, &[x, gamma, beta])
    }
}
