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
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
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

/// A built-in kind of layer as `nabla explain` sees it: what it is and the tensors it uses, in
/// the order its kind names them (linear: weight, bias; batch norm: weight, bias and the
/// running mean and variance).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// The kind of layer and its settings.
    pub spec: LayerSpec,
    /// Its parameters.
    pub params: Vec<ParamId>,
    /// Its buffers.
    pub buffers: Vec<BufferId>,
}

/// One layer applied during a traced forward pass: its input and output on the tape and, for a
/// built-in layer, what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Traced {
    /// The value the layer read.
    pub input: Var,
    /// The value it produced.
    pub output: Var,
    /// The layer, when it is a built-in kind (`None`: a module that shows only its output).
    pub layer: Option<LayerInfo>,
}

/// A piece of a network: layers, [`crate::nn::Sequential`], and user-defined blocks.
pub trait Module: Send + Sync {
    /// Records the forward pass of the batch `x` (`batch × features`) on `tape`, in the mode
    /// `ctx` says, and returns the output.
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError>;

    /// What this module is when it is one built-in layer (for `nabla explain`); `None` for
    /// modules made of others.
    fn layer(&self) -> Option<LayerInfo> {
        None
    }

    /// Records the forward pass like [`Module::forward`], pushing every layer it applies onto
    /// `trace` (for looking inside: `nabla explain`). This default pushes the module as one
    /// step; a module made of layers calls their `forward_traced` instead of `forward`, so that
    /// each of them shows.
    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        let y = self.forward(tape, x, ctx)?;
        trace.push(Traced {
            input: x,
            output: y,
            layer: self.layer(),
        });
        Ok(y)
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NablaError> {
        (**self).forward(tape, x, ctx)
    }

    fn layer(&self) -> Option<LayerInfo> {
        (**self).layer()
    }

    fn forward_traced(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        trace: &mut Vec<Traced>,
    ) -> Result<Var, NablaError> {
        (**self).forward_traced(tape, x, ctx, trace)
    }
}
