//! `nabla explain`: the walk-through's numbers are the engine's and agree with finite
//! differences; every format and error path works.

use std::process::{Command, Output};

fn nabla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .output()
        .expect("the nabla binary runs")
}

fn stdout(args: &[&str]) -> String {
    let out = nabla(args);
    assert!(
        out.status.success(),
        "nabla {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_has_every_weight_with_matching_analytic_and_numeric_gradients() {
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&["explain", "--format", "json"])).unwrap();
    let weights = v["weights"].as_array().unwrap();
    let names: Vec<&str> = weights
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10", "b1", "b2", "b3", "b4"
        ]
    );
    for w in weights {
        let g = w["gradient"].as_f64().unwrap();
        let n = w["numeric_gradient"].as_f64().unwrap();
        let (up, local) = (
            w["upstream"].as_f64().unwrap(),
            w["local"].as_f64().unwrap(),
        );
        assert!((g - n).abs() < 2e-5, "{w}: analytic {g} vs numeric {n}");
        assert!(
            (up * local - g).abs() < 1e-6,
            "{w}: upstream × local ≠ downstream"
        );
        let lr = v["learning_rate"].as_f64().unwrap();
        let (before, after) = (w["value"].as_f64().unwrap(), w["updated"].as_f64().unwrap());
        assert!(
            (before - lr * g - after).abs() < 1e-6,
            "{w}: W ← W − lr·∂L/∂W"
        );
    }
    // Hand-computed for the classic figure: z_h1 = 0.15·0.5 + 0.25·0.1 + 0.35·0.9 + 0.35 = 0.765.
    assert!((v["hidden"][0]["z"].as_f64().unwrap() - 0.765).abs() < 1e-6);
    // ∂L/∂w7 = (p1 − 1)·h1 with h1 = σ(0.765).
    let h1 = 1.0 / (1.0 + (-0.765f64).exp());
    let p1 = v["probabilities"][0].as_f64().unwrap();
    assert!((weights[6]["gradient"].as_f64().unwrap() - (p1 - 1.0) * h1).abs() < 1e-6);
    assert!(v["loss_after"].as_f64().unwrap() < v["loss"].as_f64().unwrap());
    assert_eq!(v["chain"]["weight"], "w7");
}

#[test]
fn text_shows_sums_chain_finite_difference_and_update() {
    let s = stdout(&["explain"]);
    for needle in [
        "z_h1 = w1·x1 + w3·x2 + w5·x3 + b1",
        "= 0.1500·0.5000 + 0.2500·0.1000 + 0.3500·0.9000 + 0.3500",
        "z_o1 = w7·h1 + w9·h2 + b3",
        "L  = −log p1",
        "upstream ∂L/∂z",
        "3. The full chain for w7",
        "∂L/∂w7 = ∂L/∂z_o1 · ∂z_o1/∂w7",
        "finite difference",
        "W ← W − lr·∂L/∂W",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
    }
    let s = stdout(&["explain", "--weight", "w1"]);
    assert!(s.contains("∂L/∂w1 = ∂L/∂h1 · ∂h1/∂z_h1 · ∂z_h1/∂w1"), "{s}");
    let md = stdout(&["explain", "--format", "markdown"]);
    assert!(md.starts_with("# Backpropagation by hand"));
    assert!(md.contains("|---|"));
}

#[test]
fn bad_weight_and_model_flags_fail_with_one_clear_line() {
    for (args, needle) in [
        (&["explain", "--weight", "w99"][..], "no such weight"),
        (
            &["explain", "--model", "m.safetensors"][..],
            "not implemented yet",
        ),
        (&["explain", "--sample", "3"][..], "needs --model"),
    ] {
        let out = nabla(args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && err.lines().count() == 1, "{err}");
    }
}
