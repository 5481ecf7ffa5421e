//! Any text as `--layers` and `--image-shape`: the first line is the image shape, the rest the
//! layer list. Parsing, every layer's output shape and every size a spec implies (tensors,
//! activations per row) must end in a value or an error: panics (overflow, out-of-range
//! slices) are findings. Nothing is built, so nothing large is allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nabla::nn::{ImageShape, ModelSpec};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let (shape, layers) = text.split_once('\n').unwrap_or(("1x8x8", text));
    let image = ImageShape::parse(shape);
    let inputs = image.map_or(64, |s| s.len());
    if let Ok(spec) = ModelSpec::from_layers(layers, inputs, image) {
        let _ = spec.validate();
        let _ = spec.bytes();
        for layer in &spec.layers {
            let _ = (layer.summary(), layer.parameters(), layer.tensor_bytes());
        }
    }
});
