//! A table of a sequential network's layers, their output shapes and parameter counts, like
//! Keras's `model.summary()`: printed when training starts and by `nabla inspect`.

use super::shape::Shape;
use super::spec::ModelSpec;
use crate::error::NablaError;

/// The summary of `spec` as text: one line per layer (`#`, what it is, output shape,
/// parameters), then the total.
///
/// ```
/// use nabla::nn::{ModelSpec, summary::table};
/// use nabla::kernels::activation::Activation;
/// let t = table(&ModelSpec::mlp(4, &[8], Activation::Relu, 3)).unwrap();
/// assert!(t.contains("linear 4 → 8"));
/// assert!(t.contains("total parameters: 67"));
/// ```
pub fn table(spec: &ModelSpec) -> Result<String, NablaError> {
    let shapes = spec.shapes()?;
    let rows: Vec<[String; 4]> = std::iter::once([
        "#".to_string(),
        "layer".to_string(),
        "output shape".to_string(),
        "parameters".to_string(),
    ])
    .chain(std::iter::once([
        String::new(),
        "input".to_string(),
        shape_text(spec.input()),
        String::new(),
    ]))
    .chain(
        spec.layers
            .iter()
            .zip(&shapes)
            .enumerate()
            .map(|(i, (l, s))| {
                [
                    i.to_string(),
                    l.summary(),
                    shape_text(*s),
                    l.parameters().to_string(),
                ]
            }),
    )
    .collect();
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let line = format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out += line.trim_end();
        out.push('\n');
        if n == 0 {
            out += &"-".repeat(widths.iter().sum::<usize>() + 6);
            out.push('\n');
        }
    }
    let total: usize = spec.layers.iter().map(|l| l.parameters()).sum();
    out += &format!("total parameters: {total}\n");
    Ok(out)
}

/// `32×28×28` for an image, `128` for flat features.
fn shape_text(s: Shape) -> String {
    s.to_string()
}
