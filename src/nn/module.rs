//! [`Module`]: a piece of a network. It records its forward pass on a [`Tape`] in a mode
//! (training or evaluation, carried by [`Ctx`]) and holds the ids of the parameters and buffers
//! it made with a [`crate::nn::Builder`]. Training, evaluation, inference, model files and
//! checkpoints all go through this one forward pass: there is no second copy of a layer's maths.
//!
//! A user-defined model is a struct of modules with a `forward` that calls theirs:
//!
//! ```
//! use nabla::nn::{Builder, Ctx, Init, Linear, Module, Network};
//! use nabla::{NablaError, Tape, Var};
//!
//! /// y = x + relu(W·x + b): a residual block.
//! struct Residual { inner: Linear }
//!
//! impl Module for Residual {
//!     fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
//!         let h = self.inner.forward(tape, x, ctx)?;
//!         let h = tape.relu(h);
//!         tape.add(x, h)
//!     }
//! }
//!
//! let net = Network::build(4, 4, 7, |b: &mut Builder| {
//!     Ok(Residual { inner: Linear::new(&mut b.pp("inner"), 4, 4, Init::HeNormal) })
//! })?;
//! assert_eq!(net.params().name(nabla::ParamId::default()), "inner.weight");
//! # Ok::<(), NablaError>(())
//! ```

use super::batchnorm::BatchStats;
use super::buffers::{BufferId, Buffers};
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::rng::ChaCha8Rng;
use crate::tensor::Tensor;

/// What a forward pass may read and write besides the tape: the model's buffers, and in
/// training mode the dropout stream and the batch statistics to fold into running averages.
pub struct Ctx<'c> {
    buffers: &'c Buffers,
    train: Option<(&'c mut ChaCha8Rng, &'c mut BatchStats)>,
}

impl<'c> Ctx<'c> {
    /// Evaluation mode: dropout off, batch norm on its running statistics.
    pub fn eval(buffers: &'c Buffers) -> Self {
        Self {
            buffers,
            train: None,
        }
    }

    /// Training mode: dropout draws from `rng`, batch norm normalises with the batch's own
    /// statistics and records them in `stats`.
    pub fn train(buffers: &'c Buffers, rng: &'c mut ChaCha8Rng, stats: &'c mut BatchStats) -> Self {
        stats.begin();
        Self {
            buffers,
            train: Some((rng, stats)),
        }
    }

    /// True in training mode.
    pub fn is_training(&self) -> bool {
        self.train.is_some()
    }

    /// The buffer `id`.
    pub fn buffer(&self, id: BufferId) -> &'c Tensor {
        self.buffers.get(id)
    }

    /// The training-mode random stream and batch statistics (`None` in evaluation).
    pub fn training(&mut self) -> Option<(&mut ChaCha8Rng, &mut BatchStats)> {
        self.train.as_mut().map(|(r, s)| (&mut **r, &mut **s))
    }
}

/// A piece of a network: layers, [`crate::nn::Sequential`], and user-defined blocks.
pub trait Module: Send + Sync {
    /// Records the forward pass of the batch `x` (`batch × features`) on `tape`, in the mode
    /// `ctx` says, and returns the output.
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError>;

    /// Records the forward pass like [`Module::forward`], pushing the output of every layer it
    /// is made of onto `trace` (for looking inside: `nabla explain`). A module that is not a
    /// sequence of layers pushes its output once, as this default does.
    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Var>,
    ) -> Result<Var, NablaError> {
        let y = self.forward(tape, x, ctx)?;
        trace.push(y);
        Ok(y)
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        (**self).forward(tape, x, ctx)
    }

    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Var>,
    ) -> Result<Var, NablaError> {
        (**self).forward_traced(tape, x, ctx, trace)
    }
}
