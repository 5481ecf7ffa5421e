//! [`MaxPool2d`]: the largest value of each window, PyTorch's `nn.MaxPool2d` (no padding); the
//! gradient goes back to each window's arg-max.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::init::Init;
use super::kind::{
    ExplainView, LayerKind, TensorLookup, TensorSpec, image_input, layer_error, times,
};
use super::module::{Ctx, LayerInfo, Module};
use super::shape::{ImageShape, Shape, checked_out_len};
use super::spec::LayerSpec;
use crate::autograd::{Tape, Var};
use crate::error::NablaError;
use crate::io::onnx::graph::{Graph, ints};
use crate::kernels::conv::PoolGeometry;

/// The max-pooling kind in a model file: `{"type": "max_pool2d", "kernel": 2, "stride": 2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPool2dSpec {
    /// Window side.
    pub kernel: usize,
    /// Step between windows (PyTorch's default: the window side).
    pub stride: usize,
}

/// The image a `kernel × kernel` pooling named `name` (layer `i`) moved by `stride` gives.
pub(super) fn pool_shape(
    i: usize,
    name: &str,
    (kernel, stride): (usize, usize),
    input: Shape,
) -> Result<Shape, NablaError> {
    let s = image_input(i, name, input)?;
    let side = |n| checked_out_len(n, 0, kernel, stride).unwrap_or(0);
    let (h, w) = (side(s.height), side(s.width));
    if kernel == 0 || h == 0 || w == 0 {
        return Err(layer_error(
            i,
            format!("{name} {kernel}×{kernel} of the {s} input pools down to zero size"),
        ));
    }
    Ok(Shape::Image(ImageShape::new(s.channels, h, w)))
}

/// The pooling geometry of a `kernel × kernel` window moved by `stride` over `input`.
pub(super) fn pool_geometry(input: Shape, kernel: usize, stride: usize) -> PoolGeometry {
    let image = input.image().unwrap_or(ImageShape::new(input.len(), 1, 1));
    PoolGeometry {
        channels: image.channels,
        height: image.height,
        width: image.width,
        kernel,
        stride,
    }
}

/// The ONNX node of a `kernel × kernel` pooling window moved by `stride`, no padding
/// (PyTorch's defaults).
pub(super) fn pool_onnx(g: &mut Graph, op: &str, x: &str, kernel: usize, stride: usize) -> String {
    let as_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    let (k, s) = (as_i64(kernel), as_i64(stride));
    let attrs = vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])];
    g.node(op, &[x], attrs)
}

/// `max_pool2d 2×2`, `avg_pool2d 3×3 stride 1`.
pub(super) fn pool_summary(name: &str, kernel: usize, stride: usize) -> String {
    let stride = if stride == kernel {
        String::new()
    } else {
        format!(" stride {stride}")
    };
    format!("{name} {kernel}×{kernel}{stride}")
}

impl LayerKind for MaxPool2dSpec {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn summary(&self) -> String {
        pool_summary(self.name(), self.kernel, self.stride)
    }

    fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        pool_shape(i, self.name(), (self.kernel, self.stride), input)
    }

    fn needs_image(&self) -> bool {
        true
    }

    /// The output and each window's arg-max.
    fn activations_per_row(&self, _input: Shape, output: Shape) -> Option<u64> {
        times(2, output)
    }

    fn build(&self, _b: &mut Builder, _init: Init, input: Shape) -> Box<dyn Module> {
        Box::new(MaxPool2d {
            geometry: pool_geometry(input, self.kernel, self.stride),
        })
    }

    fn onnx(
        &self,
        g: &mut Graph,
        _tensor: &TensorLookup<'_>,
        x: &str,
    ) -> Result<String, NablaError> {
        Ok(pool_onnx(g, "MaxPool", x, self.kernel, self.stride))
    }

    fn explain_view(&self) -> ExplainView {
        ExplainView::Image
    }

    fn weighted(&self) -> bool {
        false
    }
}

/// Max pooling over windows of a fixed-size image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// The input image and the window's size and stride.
    pub geometry: PoolGeometry,
}

impl Module for MaxPool2d {
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NablaError> {
        tape.max_pool2d(x, self.geometry)
    }

    fn layer(&self) -> Option<LayerInfo> {
        Some(LayerInfo {
            spec: LayerSpec::MaxPool2d(MaxPool2dSpec {
                kernel: self.geometry.kernel,
                stride: self.geometry.stride,
            }),
            params: Vec::new(),
            buffers: Vec::new(),
        })
    }
}
