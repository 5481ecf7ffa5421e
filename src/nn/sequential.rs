//! `Sequential`: layers applied one after another, built from a [`ModelSpec`]. It owns the
//! parameters; its forward pass records onto a [`Tape`] that borrows them.

use super::init::Init;
use super::spec::{LayerSpec, ModelSpec};
use crate::autograd::{ParamId, Params, Tape, Var, Workspace};
use crate::error::NablaError;
use crate::kernels::Transpose;
use crate::kernels::activation::Activation;
use crate::kernels::softmax::softmax_rows;
use crate::rng::{self, Stream};
use crate::tensor::Tensor;

/// A built layer: where its parameters are, or which function it applies.
#[derive(Clone, Copy, Debug)]
enum Layer {
    Linear { weight: ParamId, bias: ParamId },
    Activation(Activation),
}

/// A feed-forward network: the spec it was built from plus its parameters.
#[derive(Clone, Debug)]
pub struct Sequential {
    spec: ModelSpec,
    layers: Vec<Layer>,
    params: Params,
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
                other => {
                    // validate() guarantees every non-linear layer is an activation.
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

    /// Records the forward pass of the batch `x` (`batch × inputs`) on `tape` and returns the
    /// output scores (logits for classification). The tape must borrow this model's params.
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var, NablaError> {
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
            };
        }
        Ok(h)
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
