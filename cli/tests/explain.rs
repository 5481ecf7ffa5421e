//! `nabla explain`: the walk-through's numbers are the engine's and agree with finite
//! differences; every format and error path works.

mod common;
use common::{nabla, nabla_in, stdout, temp_dir};

use std::path::{Path, PathBuf};

/// One weight's row of the JSON: upstream × local = the engine's gradient (to 1e-6 of `scale`),
/// the finite difference within `fd_tolerance(gradient)`, and the update W − lr·∂L/∂W.
fn check_weight(w: &serde_json::Value, lr: f64, scale: f64, fd_tolerance: impl Fn(f64) -> f64) {
    let g = w["gradient"].as_f64().unwrap();
    let n = w["numeric_gradient"].as_f64().unwrap();
    let (up, local) = (
        w["upstream"].as_f64().unwrap(),
        w["local"].as_f64().unwrap(),
    );
    assert!(
        (up * local - g).abs() <= 1e-6 * scale,
        "{w}: upstream × local ≠ downstream"
    );
    assert!(
        (g - n).abs() <= fd_tolerance(g),
        "{w}: analytic {g} vs numeric {n}"
    );
    let (before, after) = (w["value"].as_f64().unwrap(), w["updated"].as_f64().unwrap());
    assert!(
        (before - lr * g - after).abs() <= 1e-6 * before.abs().max(1.0),
        "{w}: W ← W − lr·∂L/∂W"
    );
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
    let lr = v["learning_rate"].as_f64().unwrap();
    for w in weights {
        check_weight(w, lr, 1.0, |_| 2e-5);
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
        (&["explain", "--sample", "3"][..], "needs --model"),
        (&["explain", "--data", "x.csv"][..], "needs --model"),
    ] {
        let out = nabla(args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && err.lines().count() == 1, "{err}");
    }
    let out = nabla(&["explain", "--model", "no-such-model.safetensors"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-model.safetensors") && err.lines().count() == 1,
        "{err}"
    );
}

// ---- `--model M --sample K`: a trained model ---------------------------------------------

/// Trains a small model with `args` in `dir` and returns its file.
fn trained(dir: &Path, args: &[&str]) -> PathBuf {
    let run = dir.join("run");
    let mut all = vec![
        "train",
        "--epochs",
        "2",
        "--hidden",
        "32,16",
        "--quiet",
        "--run-dir",
        run.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = nabla_in(dir, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run.join("model.safetensors")
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&stdout(args)).unwrap()
}

/// Every shown weight: upstream × local = the engine's gradient, the finite difference agrees,
/// and the update is W − lr·∂L/∂W; every tensor's gradient agrees along its own direction.
fn check_model_trace(v: &serde_json::Value) {
    let weights = v["weights"].as_array().unwrap();
    let largest = weights
        .iter()
        .map(|w| w["gradient"].as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    assert!(largest > 0.0, "no gradient at all: {v}");
    let lr = v["learning_rate"].as_f64().unwrap();
    for w in weights {
        check_weight(w, lr, largest.max(1e-3), |g| {
            0.02 * g.abs() + 1e-3 * largest
        });
        // `unit` names the vector entry (z1[3]); `row`/`column` index the matrix: no key is
        // written twice.
        assert!(w["unit"].is_string() && w["row"].is_u64(), "{w}");
        let name = w["name"].as_str().unwrap();
        let param = w["param"].as_str().unwrap();
        assert!(
            param.starts_with("layers.") && name[1..].contains('['),
            "{name} {param}"
        );
    }
    for t in v["tensors"].as_array().unwrap() {
        let (norm, numeric) = (
            t["gradient_norm"].as_f64().unwrap(),
            t["numeric_directional"].as_f64().unwrap(),
        );
        assert!(
            (norm - numeric).abs() <= 0.01 * norm + 1e-7,
            "{t}: ‖∇‖ {norm} vs directional finite difference {numeric}"
        );
    }
    let chain = &v["chain"];
    let (product, gradient) = (
        chain["product"].as_f64().unwrap(),
        chain["gradient"].as_f64().unwrap(),
    );
    assert!(
        (product - gradient).abs() <= 1e-5 * gradient.abs().max(1e-3),
        "chain product {product} vs gradient {gradient}"
    );
    assert!(v["loss_after"].as_f64().unwrap() < v["loss"].as_f64().unwrap());
}

#[test]
fn model_walkthrough_uses_the_engines_numbers_and_agrees_with_finite_differences() {
    let dir = temp_dir("digits");
    let model = trained(&dir, &["--seed", "3"]);
    let m = model.to_str().unwrap();
    let v = json(&["explain", "--model", m, "--sample", "7", "--format", "json"]);
    check_model_trace(&v);
    // The JSON fields README documents.
    for key in [
        "model",
        "network",
        "data",
        "sample",
        "truth",
        "inputs",
        "target",
        "stages",
        "probabilities",
        "loss",
        "weights",
        "tensors",
        "learning_rate",
        "epsilon",
        "loss_after",
        "chain",
    ] {
        assert!(v.get(key).is_some(), "no {key:?} in {v}");
    }
    for key in [
        "name",
        "param",
        "stage",
        "row",
        "column",
        "value",
        "unit",
        "upstream",
        "local_name",
        "local",
        "gradient",
        "numeric_gradient",
        "updated",
    ] {
        assert!(v["weights"][0].get(key).is_some(), "no weights[0].{key}");
    }
    // Row 7 of the built-in digits is a 7 (data/digits.csv).
    let digits = include_str!("../../data/digits.csv");
    let row7 = digits.lines().nth(8).unwrap();
    let label: usize = row7.rsplit(',').next().unwrap().trim().parse().unwrap();
    assert_eq!(v["target"]["class"], label);
    assert_eq!(v["data"], "digits (built-in)");
    // z1 h1 z2 h2 z3, each with its gradient.
    let stages = v["stages"].as_array().unwrap();
    let symbols: Vec<&str> = stages
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["z1", "h1", "z2", "h2", "z3"]);
    let p: Vec<f64> = v["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    // ∂L/∂z3 = p − y, read from the tape.
    for (c, g) in stages[4]["gradient"].as_array().unwrap().iter().enumerate() {
        let y = if c == label { 1.0 } else { 0.0 };
        assert!((g.as_f64().unwrap() - (p[c] - y)).abs() < 1e-6);
    }
    assert!((v["loss"].as_f64().unwrap() + p[label].ln()).abs() < 1e-5);
    // The model's training learning rate is the default (Adam's 0.001 here).
    assert_eq!(v["learning_rate"].as_f64().unwrap(), 0.001);
    // Shown: 3 units per layer, each with 3 inputs and its bias.
    assert_eq!(v["weights"].as_array().unwrap().len(), 3 * 3 * 4);

    // A chosen weight gets the full chain, in both naming schemes.
    let named = json(&[
        "explain", "--model", m, "--sample", "7", "--format", "json", "--weight", "W2[5,9]",
    ]);
    assert_eq!(named["chain"]["weight"], "W2[5,9]");
    assert_eq!(named["chain"]["param"], "layers.2.weight[5,9]");
    check_model_trace(&named);
    let by_file_name = json(&[
        "explain",
        "--model",
        m,
        "--sample",
        "7",
        "--format",
        "json",
        "--weight",
        "layers.2.weight[5,9]",
    ]);
    assert_eq!(by_file_name["chain"], named["chain"]);

    let text = stdout(&[
        "explain", "--model", m, "--sample", "7", "--weight", "b3[2]",
    ]);
    for needle in [
        "z1 = W1·x + b1",
        "h1 = relu(z1)",
        "p = softmax(z3)",
        "← true class",
        "∂L/∂z3 = p − y",
        "∂L/∂h2 = W3ᵀ·∂L/∂z3",
        "∂L/∂z2 = ∂L/∂h2 ⊙ relu'(z2)",
        "Every parameter tensor, checked whole",
        "3. The full chain for b3[2] (layers.4.bias[2])",
        "∂L/∂b3[2] = ∂L/∂z3[2] · ∂z3[2]/∂b3[2]",
        "engine's backward pass",
        "finite difference",
        "the model's training learning rate",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let md = stdout(&[
        "explain", "--model", m, "--format", "markdown", "--limit", "2",
    ]);
    assert!(md.starts_with("# Backpropagation by hand"), "{md}");
    assert!(md.contains("## 3. The full chain for W1["), "{md}");
    assert!(md.contains("|---|"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batch_norm_and_dropout_models_are_explained_with_every_gradient_checked() {
    // Batch norm in evaluation still passes gradients to γ and β: the directional check of
    // layers.1.weight/bias would fail if it did not.
    let dir = temp_dir("bn");
    let model = trained(
        &dir,
        &[
            "--batch-norm",
            "--dropout",
            "0.2",
            "--activation",
            "tanh",
            "--seed",
            "5",
        ],
    );
    let v = json(&[
        "explain",
        "--model",
        model.to_str().unwrap(),
        "--sample",
        "11",
        "--format",
        "json",
        "--weight",
        "W1[2,20]",
    ]);
    check_model_trace(&v);
    let symbols: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["z1", "n1", "h1", "z2", "n2", "h2", "z3"]);
    let gamma = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "layers.1.weight")
        .unwrap();
    assert!(gamma["gradient_norm"].as_f64().unwrap() > 0.0, "{gamma}");
    // The chain of a first-layer weight passes through tanh and batch norm.
    let names: Vec<&str> = v["chain"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "∂L/∂h1[2]",
            "∂h1[2]/∂n1[2]",
            "∂n1[2]/∂z1[2]",
            "∂z1[2]/∂W1[2,20]"
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn regression_models_and_data_files_are_explained() {
    let dir = temp_dir("regression");
    let mut csv = String::from("a,b,colour,y\n");
    for i in 0..300 {
        let (a, b) = ((i % 17) as f64 / 4.0 - 2.0, (i % 11) as f64 / 5.0 - 1.0);
        let colour = ["red", "green", "blue"][i % 3];
        let y = a.sin() + b * b + (i % 3) as f64;
        csv.push_str(&format!("{a},{b},{colour},{y}\n"));
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();
    let model = trained(&dir, &["--data", "r.csv", "--target", "y", "--seed", "2"]);
    let m = model.to_str().unwrap();
    let data = dir.join("r.csv");
    let d = data.to_str().unwrap();
    let v = json(&[
        "explain", "--model", m, "--data", d, "--sample", "4", "--format", "json",
    ]);
    check_model_trace(&v);
    assert!(v["target"]["value"].is_number());
    assert!(v["probabilities"].is_null());
    let text = stdout(&["explain", "--model", m, "--data", d, "--sample", "4"]);
    assert!(
        text.contains("L = (ŷ − y)²") && text.contains("2·(ŷ − y)"),
        "{text}"
    );

    for (args, needle) in [
        (vec!["--sample", "300"], "has 300 rows, numbered 0 to 299"),
        (vec!["--weight", "W7[0,0]"], "linear layers 1..=3"),
        (vec!["--weight", "layers.1.weight[0,0]"], "layers.1 is relu"),
        (vec!["--weight", "W1[0,99]"], "out of range"),
        (vec!["--weight", "W1[0]"], "two indices"),
    ] {
        let mut all = vec!["explain", "--model", m, "--data", d];
        all.extend(args);
        let out = nabla(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && err.lines().count() == 1, "{err}");
    }
    // Data without the target column: the step needs the true value.
    std::fs::write(dir.join("unlabelled.csv"), "a,b,colour\n0.5,0.1,red\n").unwrap();
    let out = nabla(&[
        "explain",
        "--model",
        m,
        "--data",
        dir.join("unlabelled.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the true label"));
    // The model names r.csv relative to where it was trained: from elsewhere, --data is needed.
    let out = nabla(&["explain", "--model", m]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --data"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn many_classes_show_the_likeliest_and_the_true_one() {
    let dir = temp_dir("classes");
    let mut csv = String::from("a,b,label\n");
    for i in 0..360 {
        let k = i % 12;
        csv.push_str(&format!(
            "{},{},c{k}\n",
            k as f64 + (i % 5) as f64 * 0.05,
            (k * 7 % 12) as f64
        ));
    }
    std::fs::write(dir.join("k.csv"), csv).unwrap();
    let model = trained(&dir, &["--data", "k.csv", "--seed", "4"]);
    let (m, data) = (model.to_str().unwrap(), dir.join("k.csv"));
    let d = data.to_str().unwrap();
    let args = ["explain", "--model", m, "--data", d, "--sample", "5"];
    let text = stdout(&args);
    // The three likeliest classes and the true one (8 or 9 lines) are listed, the rest summed up.
    assert!(
        text.contains("… and 8 more classes, each below p =")
            || text.contains("… and 9 more classes, each below p ="),
        "{text}"
    );
    assert!(text.contains("← true class"), "{text}");
    assert!(text.contains("(shown: 3 of 12 outputs)"), "{text}");
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let v = json(&json_args);
    check_model_trace(&v);
    // Row 5 is class c5; the output layer's shown units include it.
    let class = v["target"]["class"].as_u64().unwrap();
    let last = v["stages"].as_array().unwrap().len() - 1;
    assert!(
        v["weights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["stage"] == last && w["row"] == class),
        "{v}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn any_valid_layer_order_is_explained_without_panicking() {
    // Files written elsewhere may order layers freely: dropout or batch norm first, an
    // activation last. The library explains them all, every gradient checked.
    use nabla::data::preprocess::{ColumnEncoding, Preprocess, Scaling, TargetEncoding};
    use nabla::explain::{Target, explain_model};
    use nabla::nn::{BatchNormSpec, DropoutSpec, LayerSpec, ModelSpec, Network, Task};
    let bn = |features| {
        LayerSpec::BatchNorm(BatchNormSpec {
            features,
            eps: 1e-5,
            momentum: 0.1,
        })
    };
    let orders = [
        vec![
            LayerSpec::Dropout(DropoutSpec { p: 0.5 }),
            bn(4),
            LayerSpec::linear(4, 3),
            LayerSpec::Sigmoid,
        ],
        vec![
            LayerSpec::Tanh,
            LayerSpec::linear(4, 5),
            LayerSpec::Gelu,
            LayerSpec::Dropout(DropoutSpec { p: 0.1 }),
            LayerSpec::linear(5, 3),
        ],
    ];
    for layers in orders {
        let spec = ModelSpec {
            inputs: 4,
            layers,
            input_shape: None,
            task: Task::Classification,
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        let net = Network::from_spec(&spec, 9).unwrap();
        let t = explain_model(
            &net,
            &[0.3, -1.2, 0.8, 2.0],
            Target::Class(1),
            2,
            None,
            0.1,
            1e-2,
        )
        .unwrap();
        assert!(!t.stages.is_empty());
        for w in &t.weights {
            let (g, n) = (w.trace.gradient as f64, w.trace.numeric_gradient);
            assert!((g - n).abs() < 1e-3 * g.abs().max(0.1), "{w:?}");
        }
        for c in &t.tensors {
            assert!(
                (c.gradient_norm - c.numeric_directional).abs() < 1e-2 * c.gradient_norm.max(1e-3),
                "{c:?}"
            );
        }
        // And the binary renders it, every format, every weight's chain.
        let dir = temp_dir(&format!("order-{}", spec.layers.len()));
        let names = ["a", "b", "c", "d"];
        let preprocess = Preprocess {
            features: names.iter().map(|n| n.to_string()).collect(),
            center: vec![0.0; 4],
            scale: vec![1.0; 4],
            scaling: Scaling::None,
            columns: names
                .iter()
                .map(|n| ColumnEncoding::Numeric {
                    name: n.to_string(),
                    impute: None,
                })
                .collect(),
            target: TargetEncoding {
                name: "y".into(),
                task: Task::Classification,
                classes: spec.classes.clone(),
                center: 0.0,
                scale: 1.0,
            },
        };
        let model = dir.join("m.safetensors");
        nabla::io::save(&model, &net, &preprocess, &serde_json::json!({})).unwrap();
        std::fs::write(
            dir.join("d.csv"),
            "a,b,c,d,y\n0.3,-1.2,0.8,2.0,b\n1,2,3,4,c\n",
        )
        .unwrap();
        let (m, d) = (model.to_str().unwrap(), dir.join("d.csv"));
        let d = d.to_str().unwrap();
        for format in ["text", "markdown", "json"] {
            stdout(&["explain", "--model", m, "--data", d, "--format", format]);
        }
        for w in &t.weights {
            let text = stdout(&[
                "explain",
                "--model",
                m,
                "--data",
                d,
                "--weight",
                &w.trace.name,
            ]);
            assert!(text.contains(&format!("3. The full chain for {}", w.trace.name)));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
