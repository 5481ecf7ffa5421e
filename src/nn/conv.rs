//! [`Conv2d`]: 2-D convolution with a square kernel, PyTorch's `nn.Conv2d`. Its weight is
//! `[out, in, k, k]` and its bias `[out]`, so model files load into PyTorch as they are.

use super::builder::Builder;
use super::init::Init;
use super::module::{Ctx, LayerInfo, Module};
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;
use crate::kernels::conv::ConvGeometry;

/// A convolution layer over images of a fixed size.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d {
    /// `W`, shape `[out, in, k, k]`, named `weight`.
    pub weight: ParamId,
    /// `b`, shape `[out]`, named `bias` (starts at zero).
    pub bias: ParamId,
    /// Output channels (filters).
    pub out_channels: usize,
    /// The input image and the kernel's size, stride, padding and dilation.
    pub geometry: ConvGeometry,
}

impl Conv2d {
    /// A layer of `out_channels` filters over inputs of `geometry`, weights drawn by `init`
    /// (fan-in `C·k·k`, fan-out `out·k·k`, as PyTorch counts them).
    pub fn new(b: &mut Builder, geometry: ConvGeometry, out_channels: usize, init: Init) -> Self {
        let k = geometry.kernel;
        let shape = [out_channels, geometry.channels, k, k];
        let weight = b.param("weight", &shape, |w, rng| {
            init.fill(w, geometry.patch(), out_channels * k * k, rng)
        });
        let bias = b.param("bias", &[out_channels], |_, _| {});
        Self {
            weight,
            bias,
            out_channels,
            geometry,
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        let (w, b) = (tape.param(self.weight), tape.param(self.bias));
        tape.conv2d(x, w, b, self.geometry)
    }

    fn layer(&self) -> Option<LayerInfo> {
        let g = self.geometry;
        Some(LayerInfo {
            spec: LayerSpec::Conv2d {
                in_channels: g.channels,
                out_channels: self.out_channels,
                kernel: g.kernel,
                stride: g.stride,
                padding: g.padding,
                dilation: g.dilation,
            },
            params: vec![self.weight, self.bias],
            buffers: Vec::new(),
        })
    }
}
