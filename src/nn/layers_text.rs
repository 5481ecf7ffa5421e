//! The layer list in words, as `--layers` and the `layers` key of config.toml take it:
//! comma-separated layers, each a word and its numbers, e.g.
//! `conv 32 3 pad 1, relu, maxpool 2, flatten, dense 128, relu, dense 10`.
//!
//! | words | layer |
//! |---|---|
//! | `dense N` (`linear N`) | fully connected, `N` outputs |
//! | `conv F K [stride S] [pad P] [dilation D]` | `F` filters of `K×K` (stride 1, pad 0, dilation 1) |
//! | `maxpool K [stride S]`, `avgpool K [stride S]` | `K×K` windows (stride `K`) |
//! | `globalavgpool` (`gap`) | one mean per channel (a `C×1×1` image) |
//! | `flatten` | an image `C×H×W` read as `C·H·W` features (C,H,W order) |
//! | `batchnorm [eps E] [momentum M]` (`bn`) | over channels after an image layer, over features otherwise |
//! | `dropout P` | each value zeroed with probability `P` (training only) |
//! | `dropout2d P` | whole channels zeroed with probability `P` (training only) |
//! | `relu`, `sigmoid`, `tanh`, `gelu`, `leaky_relu [SLOPE]` | activations (slope 0.01) |
//! | `residual(LAYERS)` | `x + f(x)`, `f` the layers inside, which give back the shape they read |
//!
//! Each layer's input size is the previous layer's output, so no layer repeats it. A dense
//! layer cannot follow an image: put `flatten` (or `globalavgpool, flatten`) before it.

use super::shape::Shape;
use super::spec::LayerSpec;
use super::{
    AvgPool2dSpec, BatchNorm2dSpec, BatchNormSpec, Conv2dSpec, Dropout2dSpec, DropoutSpec,
    LeakyReluSpec, MaxPool2dSpec, ResidualSpec,
};
use crate::error::{Message, NablaError, Setting};

/// Parses `text` into layers for samples of shape `input`.
///
/// ```
/// use nabla::nn::{layers_text::parse, ImageShape, Shape, LayerSpec};
/// let layers = parse("conv 8 3 pad 1, relu, maxpool 2, flatten, dense 10",
///                    Shape::Image(ImageShape::new(1, 28, 28))).unwrap();
/// assert_eq!(layers.len(), 5);
/// assert_eq!(layers[4], LayerSpec::linear(8 * 14 * 14, 10));
/// ```
pub fn parse(text: &str, input: Shape) -> Result<Vec<LayerSpec>, NablaError> {
    let mut shape = input;
    let mut layers = Vec::new();
    for (i, item) in split_top(text)?.into_iter().enumerate() {
        let layer = parse_item(item, shape).map_err(|why| {
            NablaError::Settings(
                Message::new()
                    .text("in ")
                    .setting(Setting::Layers)
                    .text(format!(", layer {i} \"{}\": {why}", item.trim())),
            )
        })?;
        shape = layer.output_shape(i, shape)?;
        layers.push(layer);
    }
    Ok(layers)
}

/// `text` cut at the commas outside parentheses, or the error for unbalanced parentheses.
fn split_top(text: &str) -> Result<Vec<&str>, NablaError> {
    let unbalanced = |what: &str| {
        NablaError::Settings(
            Message::new()
                .text("in ")
                .setting(Setting::Layers)
                .text(format!(": {what} in \"{}\"", text.trim())),
        )
    };
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| unbalanced("a `)` without its `(`"))?
            }
            ',' if depth == 0 => {
                items.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(unbalanced("a `(` without its `)`"));
    }
    items.push(&text[start..]);
    Ok(items)
}

/// The layers of a residual block for samples of shape `input`, or the first mistake, named by
/// its place in the block.
fn parse_block(text: &str, input: Shape) -> Result<Vec<LayerSpec>, String> {
    let mut shape = input;
    let mut layers = Vec::new();
    for (j, item) in split_top(text)
        .map_err(|e| e.to_string())?
        .into_iter()
        .enumerate()
    {
        let named = |why: String| format!("its block's layer {j} \"{}\": {why}", item.trim());
        let layer = parse_item(item, shape).map_err(named)?;
        shape = layer.output_shape(j, shape).map_err(|e| {
            let e = e.to_string();
            named(
                e.strip_prefix(&format!("layer {j}: "))
                    .unwrap_or(&e)
                    .to_string(),
            )
        })?;
        layers.push(layer);
    }
    Ok(layers)
}

/// One item of the list: `residual(LAYERS)` (its block parsed for the same `input`), or one
/// layer's words.
fn parse_item(item: &str, input: Shape) -> Result<LayerSpec, String> {
    let item = item.trim();
    let Some(open) = item.find('(') else {
        let words: Vec<&str> = item.split_whitespace().collect();
        return parse_one(&words, input);
    };
    let word = item[..open].trim();
    if !word.eq_ignore_ascii_case("residual") || !item.ends_with(')') {
        return Err(format!(
            "only `residual(LAYERS)` takes parentheses, got `{item}` (e.g. `residual(dense 64, \
             relu, dense 64)`)"
        ));
    }
    let block = parse_block(&item[open + 1..item.len() - 1], input)?;
    Ok(LayerSpec::Residual(ResidualSpec { layers: block }))
}

/// One layer's words: its name, leading numbers and `name value` options.
struct Words<'a> {
    word: &'a str,
    args: Vec<f64>,
    opts: Options<'a>,
}

impl Words<'_> {
    fn opt(&self, name: &str, default: f64) -> f64 {
        self.opts
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(default, |(_, v)| *v)
    }

    fn allowed(&self, names: &[&str]) -> Result<(), String> {
        match self.opts.iter().find(|(k, _)| !names.contains(k)) {
            Some((k, _)) => Err(format!("`{}` takes no option `{k}`", self.word)),
            None => Ok(()),
        }
    }

    fn arity(&self, n: usize, what: &str) -> Result<(), String> {
        if self.args.len() == n {
            Ok(())
        } else {
            let got = self.args.len();
            Err(format!("`{}` takes {what}, got {got} number(s)", self.word))
        }
    }

    fn count(&self, v: f64) -> Result<usize, String> {
        if v >= 1.0 && v.fract() == 0.0 && v <= MAX_SIZE {
            Ok(v as usize)
        } else if v > MAX_SIZE {
            Err(format!("`{}` takes sizes up to 2^53, got {v}", self.word))
        } else {
            Err(format!(
                "`{}` needs whole numbers above 0, got {v}",
                self.word
            ))
        }
    }

    /// A layer of no numbers and no options.
    fn plain(&self, layer: LayerSpec) -> Result<LayerSpec, String> {
        self.arity(0, "no number")?;
        self.allowed(&[])?;
        Ok(layer)
    }

    /// A dropout probability (checked by the layer's kind).
    fn probability(&self) -> Result<f32, String> {
        self.arity(1, "one number (the probability)")?;
        self.allowed(&[])?;
        Ok(self.args[0] as f32)
    }

    /// A padding: a whole number from 0 up to 2^53.
    fn padding(&self, v: f64) -> Result<usize, String> {
        if v == 0.0 {
            Ok(0)
        } else {
            self.count(v)
                .map_err(|_| format!("`{}` needs a padding of 0 to 2^53, got {v}", self.word))
        }
    }
}

/// One layer from its words, given the shape it receives: one arm per word of the grammar.
fn parse_one(words: &[&str], input: Shape) -> Result<LayerSpec, String> {
    let Some((&word, rest)) = words.split_first() else {
        return Err("empty layer (two commas in a row?)".into());
    };
    let (args, opts) = split_options(rest)?;
    let w = Words { word, args, opts };
    match word.to_ascii_lowercase().as_str() {
        "dense" | "linear" => {
            w.arity(1, "one number (its outputs)")?;
            w.allowed(&[])?;
            Ok(LayerSpec::linear(input.len(), w.count(w.args[0])?))
        }
        "conv" | "conv2d" => conv(&w, input),
        "maxpool" | "max_pool" => {
            let (kernel, stride) = pool(&w)?;
            Ok(LayerSpec::MaxPool2d(MaxPool2dSpec { kernel, stride }))
        }
        "avgpool" | "avg_pool" => {
            let (kernel, stride) = pool(&w)?;
            Ok(LayerSpec::AvgPool2d(AvgPool2dSpec { kernel, stride }))
        }
        "globalavgpool" | "global_avg_pool" | "gap" => w.plain(LayerSpec::GlobalAvgPool),
        "flatten" => w.plain(LayerSpec::Flatten),
        "batchnorm" | "batch_norm" | "bn" => batch_norm(&w, input),
        "dropout" => Ok(LayerSpec::Dropout(DropoutSpec {
            p: w.probability()?,
        })),
        "dropout2d" => Ok(LayerSpec::Dropout2d(Dropout2dSpec {
            p: w.probability()?,
        })),
        "relu" => w.plain(LayerSpec::Relu),
        "sigmoid" => w.plain(LayerSpec::Sigmoid),
        "tanh" => w.plain(LayerSpec::Tanh),
        "gelu" => w.plain(LayerSpec::Gelu),
        "leaky_relu" | "leakyrelu" => {
            if w.args.len() > 1 {
                w.arity(1, "at most one number (its slope)")?;
            }
            w.allowed(&[])?;
            Ok(LayerSpec::LeakyRelu(LeakyReluSpec {
                slope: w.args.first().copied().unwrap_or(0.01) as f32,
            }))
        }
        other => Err(format!(
            "unknown layer `{other}` (known: dense, conv, maxpool, avgpool, globalavgpool, \
             flatten, batchnorm, dropout, dropout2d, relu, sigmoid, tanh, gelu, leaky_relu, \
             residual(...))"
        )),
    }
}

/// `conv F K [stride S] [pad P] [dilation D]` over the image (or flat features) `input`.
fn conv(w: &Words, input: Shape) -> Result<LayerSpec, String> {
    w.arity(2, "two numbers (filters, kernel size)")?;
    w.allowed(&["stride", "pad", "padding", "dilation"])?;
    Ok(LayerSpec::Conv2d(Conv2dSpec {
        in_channels: input.image().map_or(input.len(), |s| s.channels),
        out_channels: w.count(w.args[0])?,
        kernel: w.count(w.args[1])?,
        stride: w.count(w.opt("stride", 1.0))?,
        padding: w.padding(w.opt("pad", w.opt("padding", 0.0)))?,
        dilation: w.count(w.opt("dilation", 1.0))?,
    }))
}

/// `maxpool K [stride S]` / `avgpool K [stride S]`: the window and its stride (`K` unless
/// given).
fn pool(w: &Words) -> Result<(usize, usize), String> {
    w.arity(1, "one number (its window size)")?;
    w.allowed(&["stride"])?;
    let kernel = w.count(w.args[0])?;
    let stride = w.count(w.opt("stride", kernel as f64))?;
    Ok((kernel, stride))
}

/// `batchnorm [eps E] [momentum M]`: over channels after an image, over features otherwise.
fn batch_norm(w: &Words, input: Shape) -> Result<LayerSpec, String> {
    w.arity(0, "no number (its size is its input's)")?;
    w.allowed(&["eps", "momentum"])?;
    let (eps, momentum) = (w.opt("eps", 1e-5) as f32, w.opt("momentum", 0.1) as f32);
    Ok(match input.image() {
        Some(s) => LayerSpec::BatchNorm2d(BatchNorm2dSpec {
            features: s.channels,
            eps,
            momentum,
        }),
        None => LayerSpec::BatchNorm(BatchNormSpec {
            features: input.len(),
            eps,
            momentum,
        }),
    })
}

/// The largest size a layer's number may give: 2^53, the largest whole number an `f64` holds
/// exactly (sizes beyond it could not be read back as written).
const MAX_SIZE: f64 = 9_007_199_254_740_992.0;

/// The one spelling of an option with two (`padding` is `pad`).
fn synonym(option: &str) -> &str {
    match option {
        "padding" => "pad",
        other => other,
    }
}

/// `name value` options of a layer, in order.
type Options<'a> = Vec<(&'a str, f64)>;

/// Splits `rest` into leading numbers and `name value` options after them.
fn split_options<'a>(rest: &[&'a str]) -> Result<(Vec<f64>, Options<'a>), String> {
    let mut args = Vec::new();
    let mut opts = Vec::new();
    let mut it = rest.iter();
    while let Some(&w) = it.next() {
        if let Ok(v) = w.parse::<f64>() {
            if !opts.is_empty() {
                return Err(format!("number {w} after the options"));
            }
            args.push(v);
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("option `{w}` needs a value"))?;
        let v = value
            .parse::<f64>()
            .map_err(|_| format!("option `{w}` needs a number, got `{value}`"))?;
        if opts
            .iter()
            .any(|(k, _): &(&str, f64)| synonym(k) == synonym(w))
        {
            return Err(format!("option `{w}` is given twice"));
        }
        opts.push((w, v));
    }
    Ok((args, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ImageShape;

    #[test]
    fn the_issue_example_parses_with_every_size_filled_in() {
        let text = "conv 32 3 pad 1, relu, maxpool 2, conv 64 3 pad 1, relu, maxpool 2, flatten, \
                    dense 128, relu, dense 10";
        let layers = parse(text, Shape::Image(ImageShape::new(1, 28, 28))).unwrap();
        assert_eq!(layers.len(), 10);
        assert_eq!(
            layers[3],
            LayerSpec::Conv2d(Conv2dSpec {
                in_channels: 32,
                out_channels: 64,
                kernel: 3,
                stride: 1,
                padding: 1,
                dilation: 1
            })
        );
        assert_eq!(layers[7], LayerSpec::linear(64 * 7 * 7, 128));
    }

    #[test]
    fn a_residual_block_parses_with_its_sizes_and_json() {
        let layers = parse(
            "dense 8, relu, residual(dense 8, relu, residual(dense 8), dense 8), dense 3",
            Shape::Flat(4),
        )
        .unwrap();
        assert_eq!(layers.len(), 4);
        let LayerSpec::Residual(block) = &layers[2] else {
            panic!("{layers:?}")
        };
        assert_eq!(block.layers.len(), 4);
        assert_eq!(block.layers[0], LayerSpec::linear(8, 8));
        assert!(matches!(block.layers[2], LayerSpec::Residual(_)));
        let json = serde_json::to_string(&layers[2]).unwrap();
        assert!(
            json.starts_with(r#"{"type":"residual","layers":[{"type":"linear","in":8,"out":8}"#)
        );
        let names: Vec<String> = layers[2].tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "block.0.weight",
                "block.0.bias",
                "block.2.block.0.weight",
                "block.2.block.0.bias",
                "block.3.weight",
                "block.3.bias"
            ]
        );
        let e = parse("dense 8, residual(dense 8, bogus)", Shape::Flat(4)).unwrap_err();
        assert!(
            e.to_string().contains("its block's layer 1 \"bogus\""),
            "{e}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let img = Shape::Image(ImageShape::new(1, 8, 8));
        let e = |t: &str, s| parse(t, s).unwrap_err().to_string();
        assert!(e("conv 4", img).contains("two numbers"));
        assert!(e("conv 4 3 stride", img).contains("needs a value"));
        assert!(e("pool 2", img).contains("unknown layer `pool`"));
        assert!(e("conv 4 9", img).contains("larger than its 1×8×8 input"));
        assert!(e("maxpool 2, maxpool 2, maxpool 2, maxpool 2", img).contains("zero size"));
        assert!(e("conv 4 3, dense 10", img).contains("put `flatten` before it"));
        assert!(e("conv 4 3", Shape::Flat(64)).contains("pass `image_shape = 1x8x8`"));
    }
}
