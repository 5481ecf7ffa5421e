//! [`Network`]: a [`Module`] and the tensors it uses: its [`Params`] (trained) and [`Buffers`]
//! (state such as running statistics). Everything that handles a whole model — the trainer,
//! evaluation, inference, model files, checkpoints — takes a `Network`, whatever module it holds.

use super::batchnorm::BatchStats;
use super::buffers::{Buffers, Dtype};
use super::builder::Builder;
use super::init::Init;
use super::module::{Ctx, Module, Traced};
use super::sequential::Sequential;
use super::spec::ModelSpec;
use crate::autograd::{Params, Tape, Var, Workspace};
use crate::error::NablaError;
use crate::kernels::softmax::softmax_rows;
use crate::rng::{self, ChaCha8Rng, Stream};
use crate::tensor::Tensor;

/// A module with its parameters and buffers, taking `inputs` features per sample and giving
/// `outputs` values (class scores, or one value for regression).
#[derive(Debug)]
pub struct Network<M = Sequential> {
    module: M,
    params: Params,
    buffers: Buffers,
    inputs: usize,
    outputs: usize,
}

/// A copy of a network's tensors (the best epoch's weights, a checkpoint's).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The parameters.
    pub params: Params,
    /// The buffers.
    pub buffers: Buffers,
}

/// One named tensor of a network as a file stores it.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    /// The PyTorch `state_dict` name (`layers.0.weight`).
    pub name: &'a str,
    /// The shape (`[out, in]`, `[C]`, `[]`).
    pub shape: &'a [usize],
    /// How a file stores the values.
    pub dtype: Dtype,
    /// The values, row-major.
    pub data: &'a [f32],
}

impl<M: Module> Network<M> {
    /// Builds a network: `build` creates the module's layers with a [`Builder`] whose random
    /// stream (for initial weights) comes from `seed`.
    pub fn build(
        inputs: usize,
        outputs: usize,
        seed: u64,
        build: impl FnOnce(&mut Builder) -> Result<M, NablaError>,
    ) -> Result<Self, NablaError> {
        let (mut params, mut buffers) = (Params::new(), Buffers::new());
        let mut rng = rng::stream(seed, Stream::Init);
        let module = build(&mut Builder::new(&mut params, &mut buffers, &mut rng))?;
        Ok(Self {
            module,
            params,
            buffers,
            inputs,
            outputs,
        })
    }

    /// The module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// Features per sample.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Values per sample out: class scores, or 1 for regression.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The parameters, mutable (for optimizers).
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// The buffers.
    pub fn buffers(&self) -> &Buffers {
        &self.buffers
    }

    /// The buffers, mutable.
    pub fn buffers_mut(&mut self) -> &mut Buffers {
        &mut self.buffers
    }

    /// Records the evaluation-mode forward pass of the batch `x` (`batch × inputs`) on `tape`
    /// (which must borrow this network's params) and returns the output scores.
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var, NablaError> {
        self.module.forward(tape, x, &mut Ctx::eval(&self.buffers))
    }

    /// As [`Network::forward`], returning every layer applied, in order (see
    /// [`Module::forward_traced`]); the last output is the output scores.
    pub fn forward_traced(&self, tape: &mut Tape, x: Var) -> Result<Vec<Traced>, NablaError> {
        let mut trace = Vec::new();
        let mut ctx = Ctx::eval(&self.buffers);
        self.module.forward_traced(tape, x, &mut ctx, &mut trace)?;
        Ok(trace)
    }

    /// Records the training-mode forward pass: dropout draws from `rng`, batch norm normalises
    /// with the batch's statistics and writes them into `stats` (for
    /// [`Network::fold_batch_stats`]).
    pub fn forward_train(
        &self,
        tape: &mut Tape,
        x: Var,
        rng: &mut ChaCha8Rng,
        stats: &mut BatchStats,
    ) -> Result<Var, NablaError> {
        self.module
            .forward(tape, x, &mut Ctx::train(&self.buffers, rng, stats))
    }

    /// Folds one training step's batch statistics, micro-batch by micro-batch in order, into the
    /// running statistics.
    pub fn fold_batch_stats<'s>(&mut self, batches: impl IntoIterator<Item = &'s BatchStats>) {
        for stats in batches {
            stats.fold_into(&mut self.buffers);
        }
    }

    /// A copy of the parameters and buffers.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            params: self.params.clone(),
            buffers: self.buffers.clone(),
        }
    }

    /// Puts back tensors taken by [`Network::snapshot`] of this network.
    pub fn restore(&mut self, snapshot: Snapshot) -> Result<(), NablaError> {
        let fits = |a: &[Tensor], b: &[Tensor]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.shape() == y.shape())
        };
        if !fits(self.params.tensors(), snapshot.params.tensors()) {
            return Err(NablaError::Shape(
                "the snapshot's parameters do not match the network".into(),
            ));
        }
        if self.buffers.len() != snapshot.buffers.len() {
            return Err(NablaError::Shape(
                "the snapshot's buffers do not match the network".into(),
            ));
        }
        self.params = snapshot.params;
        self.buffers = snapshot.buffers;
        Ok(())
    }

    /// Every parameter, then every buffer, with its name, shape and values: PyTorch's
    /// `state_dict`.
    pub fn tensors(&self) -> Vec<TensorRef<'_>> {
        let params = self.params.ids().map(|id| TensorRef {
            name: self.params.name(id),
            shape: self.params.shape(id),
            dtype: Dtype::F32,
            data: self.params.get(id).data(),
        });
        let buffers = self.buffers.ids().map(|id| TensorRef {
            name: self.buffers.name(id),
            shape: self.buffers.shape(id),
            dtype: self.buffers.dtype(id),
            data: self.buffers.get(id).data(),
        });
        params.chain(buffers).collect()
    }

    /// Loads every parameter and buffer by name, like PyTorch's `load_state_dict(strict=True)`:
    /// `read(name, dtype, shape, dst)` fills `dst` (as many values as `shape` holds) or fails.
    pub fn load_tensors(
        &mut self,
        mut read: impl FnMut(&str, Dtype, &[usize], &mut [f32]) -> Result<(), NablaError>,
    ) -> Result<(), NablaError> {
        for id in self.params.ids() {
            let (name, shape) = (
                self.params.name(id).to_string(),
                self.params.shape(id).to_vec(),
            );
            read(
                &name,
                Dtype::F32,
                &shape,
                self.params.get_mut(id).data_mut(),
            )?;
        }
        for id in self.buffers.ids() {
            let (name, shape) = (
                self.buffers.name(id).to_string(),
                self.buffers.shape(id).to_vec(),
            );
            let dtype = self.buffers.dtype(id);
            read(&name, dtype, &shape, self.buffers.get_mut(id).data_mut())?;
        }
        Ok(())
    }

    /// Output scores for a batch `x` (`batch × inputs`), without gradients.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor, NablaError> {
        if x.cols() != self.inputs {
            return Err(NablaError::Shape(format!(
                "the model takes {} inputs per sample, got {}",
                self.inputs,
                x.cols()
            )));
        }
        let mut ws = Workspace::new();
        let mut tape = Tape::new(&self.params, &mut ws).without_grad();
        let xv = tape.input(x);
        let out = self.forward(&mut tape, xv)?;
        Ok(tape.value(out).clone())
    }

    /// Class probabilities for one sample (softmax of the output scores).
    pub fn predict_proba(&self, sample: &[f32]) -> Result<Vec<f32>, NablaError> {
        let x = Tensor::from_vec(1, sample.len(), sample.to_vec())?;
        let z = self.logits(&x)?;
        let mut p = vec![0.0; z.cols()];
        softmax_rows(z.data(), z.cols(), &mut p);
        Ok(p)
    }
}

impl Network<Sequential> {
    /// The network `spec` describes, weights drawn from `seed` (each linear layer's scheme
    /// follows the activation after it: He for the ReLU family, Glorot otherwise). Its layers
    /// are named `layers.{i}.…`.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Self, NablaError> {
        Self::from_spec_with_init(spec, seed, None)
    }

    /// As [`Network::from_spec`], with one scheme `init` for every layer when given.
    pub fn from_spec_with_init(
        spec: &ModelSpec,
        seed: u64,
        init: Option<Init>,
    ) -> Result<Self, NablaError> {
        spec.validate()?;
        Self::build(spec.inputs, spec.outputs(), seed, |b| {
            Sequential::build(spec, &mut b.pp("layers"), init)
        })
    }

    /// The spec the network was built from.
    pub fn spec(&self) -> &ModelSpec {
        self.module.spec()
    }
}
