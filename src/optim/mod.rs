//! Optimizers: given `∂L/∂θ` for every parameter, update `θ` in place. The set is closed, so
//! [`Optimizer`] is an enum over small per-algorithm structs, each with its formulas in its docs.
//!
//! Every update is elementwise, so it runs over fixed chunks of each parameter, in parallel on
//! the current rayon pool when asked: each element's arithmetic is the same whichever thread
//! does it, so results never depend on the thread count.

pub mod adam;
pub mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use rayon::prelude::*;

use crate::autograd::{Grads, Params};
use crate::tensor::Tensor;

/// Elements per chunk of parallel elementwise work (big enough to amortise scheduling).
pub const CHUNK: usize = 16 * 1024;

/// Any of nabla's optimizers.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Stochastic gradient descent, with optional momentum.
    Sgd(Sgd),
    /// Adam / AdamW.
    Adam(Adam),
}

impl Optimizer {
    /// Applies one update to every parameter from its gradient, on the calling thread.
    pub fn step(&mut self, params: &mut Params, grads: &Grads) {
        self.step_with(params, grads, false);
    }

    /// Applies one update; with `parallel`, chunks run on the current rayon pool.
    pub fn step_with(&mut self, params: &mut Params, grads: &Grads, parallel: bool) {
        let (p, g) = (params.tensors_mut(), grads.tensors());
        match self {
            Optimizer::Sgd(o) => o.step(p, g, parallel),
            Optimizer::Adam(o) => o.step(p, g, parallel),
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

/// Makes a state buffer of `width` values per parameter element on first use (zeros).
pub(crate) fn ensure_state(state: &mut Vec<Vec<f32>>, params: &[Tensor], width: usize) {
    if state.len() != params.len() {
        *state = params.iter().map(|p| vec![0.0; p.len() * width]).collect();
    }
}

/// Calls `update(p, g, s)` on matching chunks of every parameter, its gradient and its state
/// (`width` state values per element), in parallel on the current rayon pool if `parallel`.
pub(crate) fn for_each_chunk<F>(
    params: &mut [Tensor],
    grads: &[Tensor],
    state: &mut [Vec<f32>],
    width: usize,
    parallel: bool,
    update: F,
) where
    F: Fn(&mut [f32], &[f32], &mut [f32]) + Sync + Send,
{
    for ((p, g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
        let (p, g) = (p.data_mut(), g.data());
        if width == 0 {
            // No state (plain SGD): chunks of params and gradients only.
            if parallel && p.len() > CHUNK {
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .for_each(|(p, g)| update(p, g, &mut []));
            } else {
                update(p, g, &mut []);
            }
        } else if parallel && p.len() > CHUNK {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(s.par_chunks_mut(CHUNK * width))
                .for_each(|((p, g), s)| update(p, g, s));
        } else {
            update(p, g, s);
        }
    }
}
