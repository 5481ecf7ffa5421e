//! Optimizers: given `∂L/∂θ` for every parameter, update `θ` in place. The set is closed, so
//! [`Optimizer`] is an enum over small per-algorithm structs, each with its formulas in its docs.

pub mod adam;
pub mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::autograd::{Grads, Params};

/// Any of nabla's optimizers.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Stochastic gradient descent, with optional momentum.
    Sgd(Sgd),
    /// Adam / AdamW.
    Adam(Adam),
}

impl Optimizer {
    /// Applies one update to every parameter from its gradient.
    pub fn step(&mut self, params: &mut Params, grads: &Grads) {
        match self {
            Optimizer::Sgd(o) => o.step(params.tensors_mut(), grads.tensors()),
            Optimizer::Adam(o) => o.step(params.tensors_mut(), grads.tensors()),
        }
    }

    /// The learning rate in force.
    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::Sgd(o) => o.lr,
            Optimizer::Adam(o) => o.lr,
        }
    }

    /// Sets the learning rate (schedules call this between steps).
    pub fn set_learning_rate(&mut self, lr: f32) {
        match self {
            Optimizer::Sgd(o) => o.lr = lr,
            Optimizer::Adam(o) => o.lr = lr,
        }
    }

    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(o) if o.decoupled => "adamw",
            Optimizer::Adam(_) => "adam",
        }
    }
}

/// Makes a state buffer per parameter on first use (zeros shaped like the parameters).
pub(crate) fn ensure_state(state: &mut Vec<Vec<f32>>, params: &[crate::Tensor]) {
    if state.len() != params.len() {
        *state = params.iter().map(|p| vec![0.0; p.len()]).collect();
    }
}
