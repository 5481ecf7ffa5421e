//! [`Conv2d`]: 2-D convolution with a square kernel, PyTorch's `nn.Conv2d`. Its weight is
//! `[out, in, k, k]` and its bias `[out]`, so model files load into PyTorch as they are.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{
    ExplainView, LayerKind, TensorLookup, TensorSpec, image_input, layer_error, times,
};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::{ImageShape, Shape, checked_out_len};
use super::spec::LayerSpec;
use crate::autograd::{ParamId, Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::{Graph, ints};
use crate::kernels::conv::ConvGeometry;

/// The convolution kind in a model file: `{"type": "conv2d", "in": 1, "out": 32, "kernel": 3,
/// "stride": 1, "padding": 1, "dilation": 1}` (PyTorch's `Conv2d`: weight
/// `[out, in, kernel, kernel]`, bias `[out]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dSpec {
    /// Input channels.
    #[serde(rename = "in")]
    pub in_channels: usize,
    /// Output channels (filters).
    #[serde(rename = "out")]
    pub out_channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Step between windows (default 1).
    #[serde(default = "one")]
    pub stride: usize,
    /// Zeros added on every side (default 0).
    #[serde(default)]
    pub padding: usize,
    /// Spacing of the kernel's taps (default 1).
    #[serde(default = "one")]
    pub dilation: usize,
}

fn one() -> usize {
    1
}

impl Conv2dSpec {
    /// The geometry of this convolution over images of shape `s`.
    pub fn geometry(&self, s: ImageShape) -> ConvGeometry {
        ConvGeometry {
            channels: s.channels,
            height: s.height,
            width: s.width,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    /// The image it gives for the image `s`, checked: `Err` says why in words.
    fn image_output(&self, s: ImageShape) -> Result<ImageShape, String> {
        let Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            dilation,
        } = *self;
        if in_channels != s.channels {
            let c = s.channels;
            return Err(format!(
                "conv2d expects {in_channels} input channels, the {s} input has {c}"
            ));
        }
        if kernel == 0 || stride == 0 || dilation == 0 || out_channels == 0 {
            return Err("conv2d needs a kernel, stride, dilation and filters above 0".into());
        }
        let too_large = || {
            format!(
                "conv2d kernel {kernel}, dilation {dilation} and padding {padding} over the {s} \
                 input give sizes too large to compute"
            )
        };
        let span = dilation
            .checked_mul(kernel - 1)
            .and_then(|d| d.checked_add(1))
            .ok_or_else(too_large)?;
        let h = checked_out_len(s.height, padding, span, stride).ok_or_else(too_large)?;
        let w = checked_out_len(s.width, padding, span, stride).ok_or_else(too_large)?;
        if h == 0 || w == 0 {
            return Err(format!(
                "the conv2d kernel {kernel}×{kernel} (span {span}) is larger than its {s} \
                 input with padding {padding}"
            ));
        }
        let out = ImageShape::new(out_channels, h, w);
        out.checked_len().map(|_| out).ok_or_else(too_large)
    }
}

impl LayerKind for Conv2dSpec {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn summary(&self) -> String {
        let (i, o, k) = (self.in_channels, self.out_channels, self.kernel);
        let mut s = format!("conv2d {i} → {o} {k}×{k}");
        for (word, v, default) in [
            ("stride", self.stride, 1),
            ("pad", self.padding, 0),
            ("dilation", self.dilation, 1),
        ] {
            if v != default {
                s += &format!(" {word} {v}");
            }
        }
        s
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        let (i, o, k) = (self.in_channels, self.out_channels, self.kernel);
        vec![
            TensorSpec::param("weight", &[o, i, k, k]),
            TensorSpec::param("bias", &[o]),
        ]
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let s = image_input(i, self.name(), input)?;
        self.image_output(s)
            .map(Shape::Image)
            .map_err(|why| layer_error(i, why))
    }

    fn needs_image(&self) -> bool {
        true
    }

    /// The output and, kept for backward, every output position's patch (`C·k·k` values).
    fn activations_per_row(&self, input: Shape, output: Shape) -> Option<u64> {
        let Shape::Image(out) = output else {
            return output.checked_len().map(|n| n as u64);
        };
        let channels = input.image().map_or(1, |s| s.channels) as u64;
        let k = self.kernel as u64;
        let patch = channels.checked_mul(k)?.checked_mul(k)?;
        let positions = (out.height as u64).checked_mul(out.width as u64)?;
        patch.checked_mul(positions)?.checked_add(times(1, output)?)
    }

    fn build(&self, b: &mut Builder, init: Init, input: Shape) -> Box<dyn Module> {
        let image = input.image().unwrap_or(ImageShape::new(input.len(), 1, 1));
        Box::new(Conv2d::new(
            b,
            self.geometry(image),
            self.out_channels,
            init,
        ))
    }

    fn onnx(
        &self,
        g: &mut Graph,
        tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        let (ws, w) = tensor("weight")?;
        let (bs, b) = tensor("bias")?;
        let w = g.f32s("weight", ws, w);
        let b = g.f32s("bias", bs, b);
        let as_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let (k, s, p, d) = (
            as_i64(self.kernel),
            as_i64(self.stride),
            as_i64(self.padding),
            as_i64(self.dilation),
        );
        let attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[s, s]),
            ints("pads", &[p, p, p, p]),
            ints("dilations", &[d, d]),
        ];
        Ok(g.node("Conv", &[x, &w, &b], attrs))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        true
    }
}

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
            spec: LayerSpec::Conv2d(Conv2dSpec {
                in_channels: g.channels,
                out_channels: self.out_channels,
                kernel: g.kernel,
                stride: g.stride,
                padding: g.padding,
                dilation: g.dilation,
            }),
            params: vec![self.weight, self.bias],
            buffers: Vec::new(),
        })
    }
}
