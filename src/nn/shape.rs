//! [`Shape`]: what one sample looks like between two layers — flat features, or an image
//! `C × H × W` (stored in C,H,W order in one row of the batch, as `torch.flatten` reads it).
//! Shapes are known before any data flows: [`crate::nn::ModelSpec::shapes`] walks them layer
//! by layer, so a stack that does not fit is refused before training starts.

use serde::{Deserialize, Serialize};

/// The shape of an image: channels, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[usize; 3]", into = "[usize; 3]")]
pub struct ImageShape {
    /// Channels (1 for grey, 3 for colour, then a convolution's filters).
    pub channels: usize,
    /// Rows of pixels.
    pub height: usize,
    /// Columns of pixels.
    pub width: usize,
}

impl ImageShape {
    /// `channels × height × width`.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// Values per sample: `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when any side is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses `CxHxW` (`1x28x28`; `×` also accepted).
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<usize> = text
            .split(['x', 'X', '×'])
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [c, h, w] if c > 0 && h > 0 && w > 0 => Some(Self::new(c, h, w)),
            _ => None,
        }
    }
}

impl From<[usize; 3]> for ImageShape {
    fn from([c, h, w]: [usize; 3]) -> Self {
        Self::new(c, h, w)
    }
}

impl From<ImageShape> for [usize; 3] {
    fn from(s: ImageShape) -> Self {
        [s.channels, s.height, s.width]
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// One sample between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A vector of this many features.
    Flat(usize),
    /// An image.
    Image(ImageShape),
}

impl Shape {
    /// Values per sample.
    pub fn len(&self) -> usize {
        match self {
            Shape::Flat(n) => *n,
            Shape::Image(s) => s.len(),
        }
    }

    /// True when a sample holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The image, if this is one.
    pub fn image(&self) -> Option<ImageShape> {
        match self {
            Shape::Image(s) => Some(*s),
            Shape::Flat(_) => None,
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Flat(n) => write!(f, "{n}"),
            Shape::Image(s) => s.fmt(f),
        }
    }
}

use super::spec::LayerSpec;
use crate::error::{Message, NablaError, Setting};
use crate::kernels::conv::out_len;

impl LayerSpec {
    /// The shape this layer gives for samples of shape `input`, or why it cannot take them
    /// (`i` is the layer's index, for the message).
    pub fn output_shape(&self, i: usize, input: Shape) -> Result<Shape, NablaError> {
        let usage = |text: String| Err(NablaError::Usage(format!("layer {i}: {text}")));
        match (*self, input) {
            (LayerSpec::Linear { inputs, outputs }, Shape::Flat(width)) => {
                if inputs != width {
                    return usage(format!(
                        "a linear layer with {inputs} inputs follows a width of {width}"
                    ));
                }
                if outputs == 0 {
                    return usage("a linear layer needs at least one output".into());
                }
                Ok(Shape::Flat(outputs))
            }
            (LayerSpec::Linear { .. }, Shape::Image(s)) => usage(format!(
                "a dense layer cannot take the {s} {}: put `flatten` before it",
                if i == 0 {
                    "input image"
                } else {
                    "image the layer before gives"
                }
            )),
            (LayerSpec::BatchNorm { features, .. }, _) => match input {
                Shape::Flat(width) if features == width => Ok(input),
                Shape::Flat(width) => usage(format!(
                    "batch norm over {features} features follows a width of {width}"
                )),
                Shape::Image(s) => usage(format!(
                    "1-D batch norm after the {s} image: use batch_norm2d (`batchnorm` of an \
                     image in a layer list) or flatten first"
                )),
            },
            (LayerSpec::Dropout { p } | LayerSpec::Dropout2d { p }, _)
                if !(0.0..1.0).contains(&p) =>
            {
                usage(format!("dropout probability must be in [0, 1), got {p}"))
            }
            (LayerSpec::Flatten, _) => Ok(Shape::Flat(input.len())),
            (_, Shape::Image(s)) => self.image_output(i, s).map(Shape::Image),
            (_, Shape::Flat(n)) if self.needs_image() => Err(flat_input(i, self.name(), n)),
            _ => Ok(input),
        }
    }

    /// True for the layers that read an image (convolution, pooling, 2-D batch norm and
    /// channel dropout).
    pub fn needs_image(&self) -> bool {
        matches!(
            self,
            LayerSpec::Conv2d { .. }
                | LayerSpec::MaxPool2d { .. }
                | LayerSpec::AvgPool2d { .. }
                | LayerSpec::GlobalAvgPool
                | LayerSpec::BatchNorm2d { .. }
                | LayerSpec::Dropout2d { .. }
        )
    }

    /// The image an image layer gives for the image `s` (activations and dropout keep it).
    fn image_output(&self, i: usize, s: ImageShape) -> Result<ImageShape, NablaError> {
        let usage = |text: String| Err(NablaError::Usage(format!("layer {i}: {text}")));
        match *self {
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
            } => {
                if in_channels != s.channels {
                    return usage(format!(
                        "conv2d expects {in_channels} input channels, the {s} input has {}",
                        s.channels
                    ));
                }
                if kernel == 0 || stride == 0 || dilation == 0 || out_channels == 0 {
                    return usage(
                        "conv2d needs a kernel, stride, dilation and filters above 0".into(),
                    );
                }
                let span = dilation * (kernel - 1) + 1;
                let (h, w) = (
                    out_len(s.height, padding, span, stride),
                    out_len(s.width, padding, span, stride),
                );
                if h == 0 || w == 0 {
                    return usage(format!(
                        "the conv2d kernel {kernel}×{kernel} (span {span}) is larger than its {s} \
                         input with padding {padding}"
                    ));
                }
                Ok(ImageShape::new(out_channels, h, w))
            }
            LayerSpec::MaxPool2d { kernel, stride } | LayerSpec::AvgPool2d { kernel, stride } => {
                let (h, w) = (
                    out_len(s.height, 0, kernel, stride),
                    out_len(s.width, 0, kernel, stride),
                );
                if kernel == 0 || h == 0 || w == 0 {
                    return usage(format!(
                        "{} {kernel}×{kernel} of the {s} input pools down to zero size",
                        self.name()
                    ));
                }
                Ok(ImageShape::new(s.channels, h, w))
            }
            LayerSpec::GlobalAvgPool => Ok(ImageShape::new(s.channels, 1, 1)),
            LayerSpec::BatchNorm2d { features, .. } if features != s.channels => usage(format!(
                "batch_norm2d over {features} channels follows the {s} image"
            )),
            _ => Ok(s),
        }
    }
}

/// An image layer fed flat features: by the data (the message names the image-shape setting,
/// with a guess when the width is a square (one channel) or three squares (colour)), or by a
/// flat layer before it.
fn flat_input(i: usize, name: &str, n: usize) -> NablaError {
    if i > 0 {
        return NablaError::Usage(format!(
            "layer {i}: {name} needs an image (C×H×W), but the layer before gives {n} flat \
             features: image layers cannot follow `flatten` or a dense layer"
        ));
    }
    let side = |c: usize| {
        let s = ((n / c) as f64).sqrt().round() as usize;
        (c * s * s == n && s > 0).then(|| format!("{c}x{s}x{s}"))
    };
    let guess = side(1).or_else(|| side(3));
    let mut m = Message::new().text(format!(
        "layer {i}: {name} expects an image input (C×H×W), the data has {n} columns: "
    ));
    m = match guess {
        Some(g) => m.text("pass ").value(Setting::ImageShape, g),
        None => m.text("give its shape with ").setting(Setting::ImageShape),
    };
    NablaError::Settings(m)
}
