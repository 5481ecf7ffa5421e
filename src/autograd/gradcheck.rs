//! Central finite differences, the independent check on every backward rule:
//! `∂f/∂x_i ≈ (f(x + ε·e_i) − f(x − ε·e_i)) / 2ε`.

use super::params::{Grads, Params};
use super::tape::{Tape, Var, Workspace};
use crate::error::NablaError;
use crate::tensor::Tensor;

/// The worst disagreement between analytic and numeric gradients found by [`check`].
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    /// Largest `|analytic − numeric| / max(1, |analytic|, |numeric|)` over every element.
    pub max_error: f64,
    /// How many elements were compared.
    pub compared: usize,
}

/// Compares the tape's gradients of the scalar `f(inputs)` with central differences.
///
/// `f` records a computation on the tape from the given input vars (tensors of any rank) and
/// returns a var of one element.
/// Every element of every input is perturbed by `±eps`; the function is evaluated in f64 from
/// the f32 forward values.
pub fn check(
    inputs: &[Tensor],
    eps: f32,
    f: impl Fn(&mut Tape, &[Var]) -> Result<Var, NablaError>,
) -> Result<GradCheck, NablaError> {
    let params = Params::new();
    let mut grads = Grads::zeros_like(&params);
    let mut ws = Workspace::new();

    // Analytic gradients from one backward pass.
    let analytic: Vec<Tensor> = {
        let mut tape = Tape::new(&params, &mut ws);
        let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t, true)).collect();
        let out = f(&mut tape, &vars)?;
        tape.backward(out, &mut grads)?;
        vars.iter()
            .zip(inputs)
            .map(|(&v, t)| {
                tape.grad(v)
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros_dims(t.dims_value()))
            })
            .collect()
    };

    let mut eval = |inputs: &[Tensor]| -> Result<f64, NablaError> {
        let mut tape = Tape::new(&params, &mut ws);
        let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t, false)).collect();
        let out = f(&mut tape, &vars)?;
        Ok(tape.value(out).data()[0] as f64)
    };

    let mut worst = GradCheck {
        max_error: 0.0,
        compared: 0,
    };
    let mut probe: Vec<Tensor> = inputs.to_vec();
    for (which, input) in inputs.iter().enumerate() {
        for i in 0..input.len() {
            let x = input.data()[i];
            probe[which].data_mut()[i] = x + eps;
            let plus = eval(&probe)?;
            probe[which].data_mut()[i] = x - eps;
            let minus = eval(&probe)?;
            probe[which].data_mut()[i] = x;
            let numeric = (plus - minus) / (2.0 * eps as f64);
            let a = analytic[which].data()[i] as f64;
            let err = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            worst.max_error = worst.max_error.max(err);
            worst.compared += 1;
        }
    }
    Ok(worst)
}
