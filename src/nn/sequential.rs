//! `Sequential`: layers applied one after another, built from a [`ModelSpec`]. It owns the
//! parameters; its forward pass records onto a [`Tape`] that borrows them.

use super::init::Init;
use super::spec::{LayerSpec, ModelSpec};
use crate::autograd::{ParamId, Params, Tape, Var, Workspace};
use crate::error::NablaError;
use crate::kernels::Transpose;
use crate::kernels::activation::Activation;
use crate::kernels::softmax::softmax_rows;
use crate::rng::{self, ChaCha8Rng, Stream};
use crate::tensor::Tensor;

/// A built layer: where its parameters are, or which function it applies.
#[derive(Clone, Copy, Debug)]
enum Layer {
    Linear {
        weight: ParamId,
        bias: ParamId,
    },
    Activation(Activation),
    Dropout(f32),
    BatchNorm {
        weight: ParamId,
        bias: ParamId,
        eps: f32,
        momentum: f32,
        /// Index into [`Sequential::running`].
        running: usize,
    },
}

/// Running mean and (unbiased) variance of one batch-norm layer, used in evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// Per-feature running mean (starts at 0).
    pub mean: Vec<f32>,
    /// Per-feature running variance (starts at 1).
    pub var: Vec<f32>,
}

impl RunningStats {
    /// `1 / sqrt(σ²_run + ε)` per feature.
    pub fn inv_std(&self, eps: f32) -> Vec<f32> {
        self.var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect()
    }

    /// Evaluation-mode batch norm as a per-feature affine map `y = x·s + t`:
    /// `s = γ·(1 / sqrt(σ²_run + ε))`, `t = β − μ_run·s` (rounded exactly as
    /// [`Sequential::forward`] computes them on the tape).
    pub fn affine(&self, gamma: &[f32], beta: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
        let scale: Vec<f32> = gamma
            .iter()
            .zip(self.inv_std(eps))
            .map(|(g, inv)| g * inv)
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(&self.mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        (scale, shift)
    }
}

/// Per batch-norm layer, the mean and biased variance of the last training batch, as
/// `[mean, var]` per layer. Kept by the caller between steps so nothing is allocated.
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    layers: Vec<[Vec<f32>; 2]>,
    rows: usize,
}

/// A feed-forward network: the spec it was built from plus its parameters.
#[derive(Clone, Debug)]
pub struct Sequential {
    spec: ModelSpec,
    layers: Vec<Layer>,
    params: Params,
    running: Vec<RunningStats>,
}

impl Sequential {
    /// Builds the network in `spec` with weights drawn from `seed` (each linear layer's scheme
    /// follows the activation after it: He for the ReLU family, Glorot otherwise).
    pub fn new(spec: &ModelSpec, seed: u64) -> Result<Self, NablaError> {
        Self::with_init(spec, seed, None)
    }

    /// As [`Sequential::new`], with one scheme `init` for every layer when given.
    pub fn with_init(spec: &ModelSpec, seed: u64, init: Option<Init>) -> Result<Self, NablaError> {
        spec.validate()?;
        let mut rng = rng::stream(seed, Stream::Init);
        let mut params = Params::new();
        let mut layers = Vec::with_capacity(spec.layers.len());
        let mut running = Vec::new();
        for (i, layer) in spec.layers.iter().enumerate() {
            match *layer {
                LayerSpec::Linear { inputs, outputs } => {
                    let next_activation = spec.layers[i + 1..]
                        .iter()
                        .take_while(|l| !matches!(l, LayerSpec::Linear { .. }))
                        .find_map(LayerSpec::activation);
                    let scheme = init.unwrap_or(Init::for_activation(next_activation));
                    let mut w = Tensor::zeros(outputs, inputs);
                    scheme.fill(w.data_mut(), inputs, outputs, &mut rng);
                    let weight = params.add(format!("layers.{i}.weight"), w);
                    let bias = params.add(format!("layers.{i}.bias"), Tensor::zeros(1, outputs));
                    layers.push(Layer::Linear { weight, bias });
                }
                LayerSpec::Dropout { p } => layers.push(Layer::Dropout(p)),
                LayerSpec::BatchNorm {
                    features,
                    eps,
                    momentum,
                } => {
                    let weight = params.add(
                        format!("layers.{i}.weight"),
                        Tensor::from_vec(1, features, vec![1.0; features])?,
                    );
                    let bias = params.add(format!("layers.{i}.bias"), Tensor::zeros(1, features));
                    layers.push(Layer::BatchNorm {
                        weight,
                        bias,
                        eps,
                        momentum,
                        running: running.len(),
                    });
                    running.push(RunningStats {
                        mean: vec![0.0; features],
                        var: vec![1.0; features],
                    });
                }
                other => {
                    // validate() guarantees every remaining layer is an activation.
                    let f = other.activation().ok_or_else(|| {
                        NablaError::Usage(format!("layer {i}: unsupported layer {other:?}"))
                    })?;
                    layers.push(Layer::Activation(f));
                }
            }
        }
        Ok(Self {
            spec: spec.clone(),
            layers,
            params,
            running,
        })
    }

    /// Replaces the parameters (e.g. loaded from a file); names and shapes must match.
    pub fn set_params(&mut self, params: Params) -> Result<(), NablaError> {
        if params.len() != self.params.len() {
            return Err(NablaError::Shape(format!(
                "the model has {} parameter tensors, got {}",
                self.params.len(),
                params.len()
            )));
        }
        for ((name, old), (new_name, new)) in self.params.iter().zip(params.iter()) {
            if name != new_name || old.shape() != new.shape() {
                return Err(NablaError::Shape(format!(
                    "parameter {name} {:?} does not match {new_name} {:?}",
                    old.shape(),
                    new.shape()
                )));
            }
        }
        self.params = params;
        Ok(())
    }

    /// The spec the network was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The parameters, mutable (for optimizers).
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// Records the evaluation-mode forward pass of the batch `x` (`batch × inputs`) on `tape`
    /// and returns the output scores (logits for classification): dropout is off and batch
    /// norm uses its running statistics. The tape must borrow this model's params.
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var, NablaError> {
        self.forward_mode(tape, x, None, None)
    }

    /// As [`Sequential::forward`], also returning every layer's output, one var per layer of
    /// the spec in order (the last is the output scores). A layer that does nothing in
    /// evaluation (dropout) hands on its input's var. For looking inside: `nabla explain`.
    pub fn forward_traced(&self, tape: &mut Tape, x: Var) -> Result<Vec<Var>, NablaError> {
        let mut trace = Vec::with_capacity(self.layers.len());
        self.forward_mode(tape, x, None, Some(&mut trace))?;
        Ok(trace)
    }

    /// Records the training-mode forward pass: dropout draws its masks from `rng`, batch norm
    /// normalises with this batch's statistics and writes them into `stats` (for
    /// [`Sequential::update_running_stats`]).
    pub fn forward_train(
        &self,
        tape: &mut Tape,
        x: Var,
        rng: &mut ChaCha8Rng,
        stats: &mut BatchStats,
    ) -> Result<Var, NablaError> {
        self.forward_mode(tape, x, Some((rng, stats)), None)
    }

    fn forward_mode(
        &self,
        tape: &mut Tape,
        x: Var,
        mut train: Option<(&mut ChaCha8Rng, &mut BatchStats)>,
        mut trace: Option<&mut Vec<Var>>,
    ) -> Result<Var, NablaError> {
        if let Some((_, stats)) = train.as_mut() {
            stats
                .layers
                .resize_with(self.running.len(), Default::default);
            stats.rows = tape.shape(x).0;
        }
        let mut h = x;
        for layer in &self.layers {
            h = match *layer {
                Layer::Linear { weight, bias } => {
                    let w = tape.param(weight);
                    let b = tape.param(bias);
                    let z = tape.matmul_t(h, Transpose::No, w, Transpose::Yes)?;
                    tape.add_row(z, b)?
                }
                Layer::Activation(f) => tape.activation(h, f),
                Layer::Dropout(p) => match train.as_mut() {
                    Some((rng, _)) if p > 0.0 => tape.dropout(h, p, rng)?,
                    _ => h,
                },
                Layer::BatchNorm {
                    weight,
                    bias,
                    eps,
                    running,
                    ..
                } => {
                    let (g, b) = (tape.param(weight), tape.param(bias));
                    match train.as_mut() {
                        Some((_, stats)) => {
                            let y = tape.batch_norm(h, g, b, eps)?;
                            if let Some((mean, var)) = tape.batch_statistics(y) {
                                let slot = &mut stats.layers[running];
                                slot[0].clear();
                                slot[0].extend_from_slice(mean);
                                slot[1].clear();
                                slot[1].extend_from_slice(var);
                            }
                            y
                        }
                        None => {
                            // y = γ (x − μ_run)/sqrt(σ²_run + ε) + β  =  x·s + t with
                            // s = γ·(1/sqrt(σ²_run + ε)) and t = β − μ_run·s, recorded on the
                            // tape so that γ and β still get their gradients.
                            let r = &self.running[running];
                            let n = r.mean.len();
                            let inv = tape.input(&Tensor::from_vec(1, n, r.inv_std(eps))?);
                            let mean = tape.input(&Tensor::from_vec(1, n, r.mean.clone())?);
                            let s = tape.mul(g, inv)?;
                            let ms = tape.mul(mean, s)?;
                            let t = tape.sub(b, ms)?;
                            tape.affine_rows(h, s, t)?
                        }
                    }
                }
            };
            if let Some(trace) = trace.as_mut() {
                trace.push(h);
            }
        }
        Ok(h)
    }

    /// Folds the batch statistics of one training step's micro-batches, in order, into the
    /// running statistics: `r ← (1 − m)·r + m·batch` with the variance made unbiased
    /// (`· n/(n − 1)`), as PyTorch's `BatchNorm1d` does.
    pub fn update_running_stats<'s>(&mut self, batches: impl IntoIterator<Item = &'s BatchStats>) {
        for stats in batches {
            for layer in &self.layers {
                if let Layer::BatchNorm {
                    momentum, running, ..
                } = *layer
                    && let Some([mean, var]) = stats.layers.get(running)
                {
                    let n = stats.rows as f32;
                    let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
                    let r = &mut self.running[running];
                    for (rm, m) in r.mean.iter_mut().zip(mean) {
                        *rm = (1.0 - momentum) * *rm + momentum * m;
                    }
                    for (rv, v) in r.var.iter_mut().zip(var) {
                        *rv = (1.0 - momentum) * *rv + momentum * v * unbias;
                    }
                }
            }
        }
    }

    /// The running statistics of each batch-norm layer, in layer order.
    pub fn running_stats(&self) -> &[RunningStats] {
        &self.running
    }

    /// Replaces the running statistics (e.g. loaded from a file); counts and sizes must match.
    pub fn set_running_stats(&mut self, running: Vec<RunningStats>) -> Result<(), NablaError> {
        let fits = running.len() == self.running.len()
            && running
                .iter()
                .zip(&self.running)
                .all(|(a, b)| a.mean.len() == b.mean.len() && a.var.len() == b.var.len());
        if !fits {
            return Err(NablaError::Shape(
                "running statistics do not match the model's batch-norm layers".into(),
            ));
        }
        self.running = running;
        Ok(())
    }

    /// Output scores for a batch `x` (`batch × inputs`), without gradients.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor, NablaError> {
        if x.cols() != self.spec.inputs {
            return Err(NablaError::Shape(format!(
                "the model takes {} inputs per sample, got {}",
                self.spec.inputs,
                x.cols()
            )));
        }
        let mut ws = Workspace::new();
        let mut tape = Tape::new(&self.params, &mut ws);
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
