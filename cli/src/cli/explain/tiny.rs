//! `nabla explain` on the classic 3-2-2 network with named weights (`nabla::explain::TinyNet`).

use anyhow::{Result, bail};
use serde::Serialize;

use nabla::explain::{Explanation, TinyNet, UnitTrace, WeightTrace, explain};

use super::doc::{Column, Doc, Markup, Table};
use super::{ExplainArgs, Factor, num};

/// The default sample: three features, true class 1 (index 0).
const SAMPLE: [f32; 3] = [0.5, 0.1, 0.9];

/// Runs `nabla explain` on the tiny network.
pub(super) fn run(args: &ExplainArgs) -> Result<()> {
    let weight = args.weight.as_deref().unwrap_or("w7");
    let e = explain(
        &TinyNet::classic(),
        &SAMPLE,
        0,
        args.lr.unwrap_or(0.5) as f32,
        args.epsilon as f32,
    )?;
    let Some(chosen) = e.weights.iter().find(|w| w.name == weight) else {
        let names: Vec<&str> = e.weights.iter().map(|w| w.name.as_str()).collect();
        return Err(nabla::NablaError::Usage(format!(
            "--weight {weight}: no such weight; the network has {}",
            names.join(", ")
        ))
        .into());
    };
    let chain = chain(&e, chosen);
    let out = match args.format.markup() {
        None => {
            #[derive(Serialize)]
            struct Json<'a> {
                network: &'static str,
                /// The true class numbered as the text numbers it (`true class 1`).
                true_class: usize,
                /// The one-hot target `y`, as in the text's `target y = (1, 0)`.
                target: Vec<u8>,
                #[serde(flatten)]
                explanation: serde_json::Value,
                chain: &'a Chain,
            }
            // The library's 0-based `label` would read as "class 0" beside the text's
            // "true class 1": the JSON names the class as the text does.
            let mut explanation = serde_json::to_value(&e)?;
            if let Some(fields) = explanation.as_object_mut() {
                fields.remove("label");
            }
            serde_json::to_string_pretty(&Json {
                network: "3 inputs -> 2 hidden (sigmoid) -> 2 outputs (softmax), cross-entropy",
                true_class: e.label + 1,
                target: (0..e.outputs.len())
                    .map(|k| u8::from(k == e.label))
                    .collect(),
                explanation,
                chain: &chain,
            })? + "\n"
        }
        Some(markup) => render(&e, &chain, markup)?,
    };
    crate::cli::print(&out)?;
    Ok(())
}

/// The full chain rule for one weight.
#[derive(Debug, Serialize)]
struct Chain {
    weight: String,
    /// For hidden-layer weights, `∂L/∂h` is a sum over the outputs: its terms.
    paths: Vec<Factor>,
    factors: Vec<Factor>,
    product: f64,
    gradient: f32,
    numeric_gradient: f64,
}

fn chain(e: &Explanation, w: &WeightTrace) -> Chain {
    let mut factors = Vec::new();
    let mut paths = Vec::new();
    if let Some(o) = e.outputs.iter().find(|u| u.name == w.unit) {
        let k: usize = o.name[1..].parse().unwrap_or(1);
        let y = if k - 1 == e.label { 1.0 } else { 0.0 };
        factors.push(Factor {
            name: format!("∂L/∂z_{}", o.name),
            formula: format!("p{k} − y{k} = {:.4} − {y}", o.output),
            value: o.dl_dz as f64,
        });
    } else if let Some(h) = e.hidden.iter().find(|u| u.name == w.unit) {
        let j: usize = h.name[1..].parse().unwrap_or(1);
        for o in &e.outputs {
            // The weight from h_j into o: term j−1 of o's sum.
            if let Some(term) = o.terms.get(j - 1) {
                paths.push(Factor {
                    name: format!("∂L/∂z_{} · ∂z_{}/∂{}", o.name, o.name, h.name),
                    formula: format!("{:.4} · {} ({:.4})", o.dl_dz, term.0, term.1),
                    value: o.dl_dz as f64 * term.1 as f64,
                });
            }
        }
        factors.push(Factor {
            name: format!("∂L/∂{}", h.name),
            formula: paths
                .iter()
                .map(|p| format!("{:.4}", p.value))
                .collect::<Vec<_>>()
                .join(" + "),
            value: h.dl_doutput.unwrap_or(0.0) as f64,
        });
        factors.push(Factor {
            name: format!("∂{}/∂z_{}", h.name, h.name),
            formula: format!(
                "σ'(z) = {}(1 − {}) = {:.4}·{:.4}",
                h.name,
                h.name,
                h.output,
                1.0 - h.output
            ),
            value: h.output as f64 * (1.0 - h.output as f64),
        });
    }
    factors.push(Factor {
        name: format!("∂z_{}/∂{}", w.unit, w.name),
        formula: w.local_name.clone(),
        value: w.local as f64,
    });
    Chain {
        weight: w.name.clone(),
        paths,
        product: factors.iter().map(|f| f.value).product(),
        factors,
        gradient: w.gradient,
        numeric_gradient: w.numeric_gradient,
    }
}

/// The walk-through as a document: header, forward pass, backward pass with every weight's
/// gradient, the chosen weight's full chain, and the update.
fn render(e: &Explanation, c: &Chain, markup: Markup) -> Result<String> {
    if bad_unit(e) {
        bail!("internal: the explanation has no units");
    }
    let mut doc = Doc::new(markup);
    doc.title(
        "Backpropagation by hand: one training step",
        "nabla explain — one training step by hand, every number from the engine's tape",
    );
    doc.lines(&header(e));
    doc.heading("1. Forward pass");
    doc.equations(&forward(e));
    doc.heading("2. Backpropagation: upstream × local = downstream");
    doc.equations(&backward(e));
    doc.table(&gradients(e));
    doc.heading(&format!("3. The full chain for {}", c.weight));
    doc.equations(&chain_lines(e, c));
    doc.heading(&format!(
        "4. The update: W ← W − lr·∂L/∂W with lr = {}",
        e.learning_rate
    ));
    doc.equations(&update(e));
    doc.paragraph(&format!(
        "The loss on this sample falls from {:.4} to {:.4} after one step.",
        e.loss, e.loss_after
    ));
    Ok(doc.finish())
}

/// The network and the sample.
fn header(e: &Explanation) -> Vec<String> {
    let xs: Vec<String> = e
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| format!("x{} = {v}", i + 1))
        .collect();
    let target: Vec<&str> = (0..e.outputs.len())
        .map(|k| if k == e.label { "1" } else { "0" })
        .collect();
    vec![
        "Network: 3 inputs → 2 hidden units (sigmoid) → 2 outputs (softmax), cross-entropy loss."
            .to_string(),
        format!(
            "Sample:  {}; true class {} (target y = ({})).",
            xs.join(", "),
            e.label + 1,
            target.join(", ")
        ),
    ]
}

/// Every unit's sum term by term, the sigmoids, the softmax and the loss.
fn forward(e: &Explanation) -> Vec<String> {
    let mut lines = Vec::new();
    for (layer, sigmoid) in [(&e.hidden, true), (&e.outputs, false)] {
        for u in layer {
            lines.extend(unit_sum(u, sigmoid));
        }
    }
    let denom: Vec<String> = e
        .outputs
        .iter()
        .map(|o| format!("e^z_{}", o.name))
        .collect();
    for (k, o) in e.outputs.iter().enumerate() {
        lines.push(format!(
            "p{} = e^z_{} / ({}) = {:.4}",
            k + 1,
            o.name,
            denom.join(" + "),
            o.output
        ));
    }
    lines.push(format!(
        "L  = −log p{} = −log {:.4} = {:.4}",
        e.label + 1,
        e.probabilities.get(e.label).copied().unwrap_or(f32::NAN),
        e.loss
    ));
    lines
}

/// `z_h1 = w1·x1 + … + b1` in symbols, in numbers and its value; with `sigmoid`, `h1 = σ(z_h1)`.
fn unit_sum(u: &UnitTrace, sigmoid: bool) -> Vec<String> {
    let sym: Vec<String> = u.terms.iter().map(|t| format!("{}·{}", t.0, t.2)).collect();
    let val: Vec<String> = u
        .terms
        .iter()
        .map(|t| format!("{}·{}", num(t.1), num(t.3)))
        .collect();
    let name = format!("z_{}", u.name);
    let pad = " ".repeat(name.chars().count());
    let mut lines = vec![
        format!("{name} = {} + {}", sym.join(" + "), u.bias_name),
        format!("{pad} = {} + {}", val.join(" + "), num(u.bias)),
        format!("{pad} = {:.4}", u.z),
    ];
    if sigmoid {
        lines.push(format!(
            "{}{} = σ(z_{}) = 1 / (1 + e^−z) = {:.4}",
            u.name,
            &pad[u.name.len().min(pad.len())..],
            u.name,
            u.output
        ));
    }
    lines
}

/// `∂L/∂z` of the outputs (p − y), then of each hidden unit through its sigmoid.
fn backward(e: &Explanation) -> Vec<String> {
    let mut lines = Vec::new();
    for (k, o) in e.outputs.iter().enumerate() {
        let y = if k == e.label { 1 } else { 0 };
        lines.push(format!(
            "∂L/∂z_{} = p{} − y{} = {:.4} − {y} = {:.4}",
            o.name,
            k + 1,
            k + 1,
            o.output,
            o.dl_dz
        ));
    }
    for (j, h) in e.hidden.iter().enumerate() {
        let sym: Vec<String> = e
            .outputs
            .iter()
            .map(|o| format!("{}·∂L/∂z_{}", o.terms[j].0, o.name))
            .collect();
        let val: Vec<String> = e
            .outputs
            .iter()
            .map(|o| format!("{}·{}", num(o.terms[j].1), num(o.dl_dz)))
            .collect();
        lines.push(format!(
            "∂L/∂{}   = {} = {} = {:.4}",
            h.name,
            sym.join(" + "),
            val.join(" + "),
            h.dl_doutput.unwrap_or(f32::NAN)
        ));
        lines.push(format!(
            "∂L/∂z_{} = ∂L/∂{} · {}(1 − {}) = {} · {:.4} = {:.4}",
            h.name,
            h.name,
            h.name,
            h.name,
            num(h.dl_doutput.unwrap_or(f32::NAN)),
            h.output * (1.0 - h.output),
            h.dl_dz
        ));
    }
    lines
}

/// Columns of the gradient table.
const GRADIENT_COLUMNS: [Column; 5] = [
    Column {
        title: "weight",
        width: 6,
    },
    Column {
        title: "upstream ∂L/∂z",
        width: 22,
    },
    Column {
        title: "× local ∂z/∂w",
        width: 14,
    },
    Column {
        title: "= downstream ∂L/∂w",
        width: 22,
    },
    Column {
        title: "finite difference",
        width: 0,
    },
];

/// Every weight: upstream × local = downstream, beside its finite difference.
fn gradients(e: &Explanation) -> Table {
    let mut table = Table::new(&GRADIENT_COLUMNS);
    for w in &e.weights {
        table.rows.push(vec![
            w.name.clone(),
            format!("∂L/∂z_{} = {:.6}", w.unit, w.upstream),
            format!("{} = {:.4}", w.local_name, w.local),
            format!("{:.6}", w.gradient),
            format!("{:.6}", w.numeric_gradient),
        ]);
    }
    table
}

/// The chosen weight's chain rule factor by factor, its product and the finite difference.
fn chain_lines(e: &Explanation, c: &Chain) -> Vec<String> {
    let names: Vec<&str> = c.factors.iter().map(|f| f.name.as_str()).collect();
    let mut lines = vec![format!("∂L/∂{} = {}", c.weight, names.join(" · "))];
    for f in &c.factors {
        lines.push(format!("  {} = {} = {:.6}", f.name, f.formula, f.value));
        if f.name.starts_with("∂L/∂h") {
            for p in &c.paths {
                lines.push(format!("      {} = {} = {:.6}", p.name, p.formula, p.value));
            }
        }
    }
    let vals: Vec<String> = c.factors.iter().map(|f| num(f.value as f32)).collect();
    lines.push(format!(
        "∂L/∂{} = {} = {:.6}   (engine's backward pass: {:.6})",
        c.weight,
        vals.join(" · "),
        c.product,
        c.gradient
    ));
    lines.push(format!(
        "finite difference: (L({w}+ε) − L({w}−ε)) / 2ε with ε = {} gives {:.6}",
        e.epsilon,
        c.numeric_gradient,
        w = c.weight
    ));
    lines
}

/// `w ← w − lr·∂L/∂w` for every weight.
fn update(e: &Explanation) -> Vec<String> {
    e.weights
        .iter()
        .map(|w| {
            format!(
                "{:<4} ← {:.4} − {}·{} = {:.4}",
                w.name,
                w.value,
                e.learning_rate,
                num(w.gradient),
                w.updated
            )
        })
        .collect()
}

fn bad_unit(e: &Explanation) -> bool {
    e.hidden.is_empty() || e.outputs.is_empty()
}
