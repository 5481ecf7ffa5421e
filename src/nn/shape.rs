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

    /// Values per sample: `C·H·W` (saturating at `usize::MAX`; shapes a spec accepts never
    /// overflow, see [`ImageShape::checked_len`]).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// `C·H·W`, `None` when it overflows.
    pub fn checked_len(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
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
        let [c, h, w] = parts[..] else {
            return None;
        };
        let shape = Self::new(c, h, w);
        (c > 0 && h > 0 && w > 0 && shape.checked_len().is_some()).then_some(shape)
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
    /// Values per sample (saturating, see [`ImageShape::len`]).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Values per sample, `None` when an image's `C·H·W` overflows.
    pub fn checked_len(&self) -> Option<usize> {
        match self {
            Shape::Flat(n) => Some(*n),
            Shape::Image(s) => s.checked_len(),
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

use crate::error::{Message, NablaError, Setting};

/// Output positions along one side of `n` pixels padded by `padding` on both ends, for a
/// window spanning `span` moved by `stride`: `(n + 2·padding − span) / stride + 1`, `Some(0)`
/// when the window does not fit, `None` when a size overflows.
pub fn checked_out_len(n: usize, padding: usize, span: usize, stride: usize) -> Option<usize> {
    let padded = n.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || span > padded {
        Some(0)
    } else {
        Some((padded - span) / stride + 1)
    }
}

/// An image layer fed flat features: by the data (the message names the image-shape setting,
/// with a guess when the width is a square (one channel) or three squares (colour)), or by a
/// flat layer before it.
pub(crate) fn flat_input(i: usize, name: &str, n: usize) -> NablaError {
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
