//! `nabla explain` on the classic 3-2-2 network with named weights (`nabla::explain::TinyNet`).

use anyhow::{Result, bail};
use serde::Serialize;
use std::fmt::Write as _;

use nabla::explain::{Explanation, TinyNet, WeightTrace, explain};

use super::{ExplainArgs, Factor, Format, heading, num};

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
    let out = match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Json<'a> {
                network: &'static str,
                #[serde(flatten)]
                explanation: &'a Explanation,
                chain: &'a Chain,
            }
            serde_json::to_string_pretty(&Json {
                network: "3 inputs -> 2 hidden (sigmoid) -> 2 outputs (softmax), cross-entropy",
                explanation: &e,
                chain: &chain,
            })? + "\n"
        }
        Format::Text => render(&e, &chain, false)?,
        Format::Markdown => render(&e, &chain, true)?,
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

fn render(e: &Explanation, c: &Chain, md: bool) -> Result<String> {
    let mut s = String::new();
    let (open, close) = if md { ("```text\n", "```\n") } else { ("", "") };
    if md {
        writeln!(s, "# Backpropagation by hand: one training step\n")?;
    } else {
        writeln!(
            s,
            "nabla explain — one training step by hand, every number from the engine's tape\n"
        )?;
    }
    writeln!(
        s,
        "Network: 3 inputs → 2 hidden units (sigmoid) → 2 outputs (softmax), cross-entropy loss.{}",
        if md { "\n" } else { "" }
    )?;
    let xs: Vec<String> = e
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| format!("x{} = {v}", i + 1))
        .collect();
    let target: Vec<&str> = (0..e.outputs.len())
        .map(|k| if k == e.label { "1" } else { "0" })
        .collect();
    writeln!(
        s,
        "Sample:  {}; true class {} (target y = ({})).\n",
        xs.join(", "),
        e.label + 1,
        target.join(", ")
    )?;
    if bad_unit(e) {
        bail!("internal: the explanation has no units");
    }

    heading(&mut s, "1. Forward pass", md);
    s += open;
    for (layer, act) in [(&e.hidden, true), (&e.outputs, false)] {
        for u in layer {
            let sym: Vec<String> = u.terms.iter().map(|t| format!("{}·{}", t.0, t.2)).collect();
            let val: Vec<String> = u
                .terms
                .iter()
                .map(|t| format!("{}·{}", num(t.1), num(t.3)))
                .collect();
            let name = format!("z_{}", u.name);
            let pad = " ".repeat(name.chars().count());
            writeln!(s, "{name} = {} + {}", sym.join(" + "), u.bias_name)?;
            writeln!(s, "{pad} = {} + {}", val.join(" + "), num(u.bias))?;
            writeln!(s, "{pad} = {:.4}", u.z)?;
            if act {
                writeln!(
                    s,
                    "{}{} = σ(z_{}) = 1 / (1 + e^−z) = {:.4}",
                    u.name,
                    &pad[u.name.len().min(pad.len())..],
                    u.name,
                    u.output
                )?;
            }
        }
    }
    let denom: Vec<String> = e
        .outputs
        .iter()
        .map(|o| format!("e^z_{}", o.name))
        .collect();
    for (k, o) in e.outputs.iter().enumerate() {
        writeln!(
            s,
            "p{} = e^z_{} / ({}) = {:.4}",
            k + 1,
            o.name,
            denom.join(" + "),
            o.output
        )?;
    }
    writeln!(
        s,
        "L  = −log p{} = −log {:.4} = {:.4}",
        e.label + 1,
        e.probabilities.get(e.label).copied().unwrap_or(f32::NAN),
        e.loss
    )?;
    s += close;
    writeln!(s)?;

    heading(
        &mut s,
        "2. Backpropagation: upstream × local = downstream",
        md,
    );
    s += open;
    for (k, o) in e.outputs.iter().enumerate() {
        let y = if k == e.label { 1 } else { 0 };
        writeln!(
            s,
            "∂L/∂z_{} = p{} − y{} = {:.4} − {y} = {:.4}",
            o.name,
            k + 1,
            k + 1,
            o.output,
            o.dl_dz
        )?;
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
        writeln!(
            s,
            "∂L/∂{}   = {} = {} = {:.4}",
            h.name,
            sym.join(" + "),
            val.join(" + "),
            h.dl_doutput.unwrap_or(f32::NAN)
        )?;
        writeln!(
            s,
            "∂L/∂z_{} = ∂L/∂{} · {}(1 − {}) = {} · {:.4} = {:.4}",
            h.name,
            h.name,
            h.name,
            h.name,
            num(h.dl_doutput.unwrap_or(f32::NAN)),
            h.output * (1.0 - h.output),
            h.dl_dz
        )?;
    }
    s += close;
    writeln!(s)?;
    if md {
        writeln!(
            s,
            "| weight | upstream ∂L/∂z | × local ∂z/∂w | = downstream ∂L/∂w | finite difference |"
        )?;
        writeln!(s, "|---|---|---|---|---|")?;
    } else {
        writeln!(
            s,
            "{:<6} {:<22} {:<14} {:<22} finite difference",
            "weight", "upstream ∂L/∂z", "× local ∂z/∂w", "= downstream ∂L/∂w"
        )?;
    }
    for w in &e.weights {
        let up = format!("∂L/∂z_{} = {:.6}", w.unit, w.upstream);
        let local = format!("{} = {:.4}", w.local_name, w.local);
        let down = format!("{:.6}", w.gradient);
        let fd = format!("{:.6}", w.numeric_gradient);
        if md {
            writeln!(s, "| {} | {up} | {local} | {down} | {fd} |", w.name)?;
        } else {
            writeln!(s, "{:<6} {up:<22} {local:<14} {down:<22} {fd}", w.name)?;
        }
    }
    writeln!(s)?;

    heading(&mut s, &format!("3. The full chain for {}", c.weight), md);
    s += open;
    let names: Vec<&str> = c.factors.iter().map(|f| f.name.as_str()).collect();
    writeln!(s, "∂L/∂{} = {}", c.weight, names.join(" · "))?;
    for f in &c.factors {
        writeln!(s, "  {} = {} = {:.6}", f.name, f.formula, f.value)?;
        if f.name.starts_with("∂L/∂h") {
            for p in &c.paths {
                writeln!(s, "      {} = {} = {:.6}", p.name, p.formula, p.value)?;
            }
        }
    }
    let vals: Vec<String> = c.factors.iter().map(|f| num(f.value as f32)).collect();
    writeln!(
        s,
        "∂L/∂{} = {} = {:.6}   (engine's backward pass: {:.6})",
        c.weight,
        vals.join(" · "),
        c.product,
        c.gradient
    )?;
    writeln!(
        s,
        "finite difference: (L({w}+ε) − L({w}−ε)) / 2ε with ε = {} gives {:.6}",
        e.epsilon,
        c.numeric_gradient,
        w = c.weight
    )?;
    s += close;
    writeln!(s)?;

    heading(
        &mut s,
        &format!(
            "4. The update: W ← W − lr·∂L/∂W with lr = {}",
            e.learning_rate
        ),
        md,
    );
    s += open;
    for w in &e.weights {
        writeln!(
            s,
            "{:<4} ← {:.4} − {}·{} = {:.4}",
            w.name,
            w.value,
            e.learning_rate,
            num(w.gradient),
            w.updated
        )?;
    }
    s += close;
    writeln!(
        s,
        "\nThe loss on this sample falls from {:.4} to {:.4} after one step.",
        e.loss, e.loss_after
    )?;
    Ok(s)
}

fn bad_unit(e: &Explanation) -> bool {
    e.hidden.is_empty() || e.outputs.is_empty()
}
