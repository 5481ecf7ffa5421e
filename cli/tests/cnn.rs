//! Convolutional networks end to end through the binary: `--layers` with `--image-shape` on the
//! built-in digits (1×8×8), the summary table, model files (PyTorch names, format version 2),
//! inspect, evaluate, predict, thread-count independence, checkpoints and bit-exact resume, and
//! the errors that stop a stack that does not fit before training.

mod common;
use common::{nabla, stdout, temp_dir};

const LAYERS: &str = "conv 4 3 pad 1, batchnorm, relu, maxpool 2, dropout2d 0.1, conv 6 3, relu, \
                      avgpool 2 stride 1, flatten, dense 16, relu, dropout 0.1, dense 10";

fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--layers",
        LAYERS,
        "--image-shape",
        "1x8x8",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--no-save",
    ];
    a.extend_from_slice(extra);
    a
}

fn bits(path: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    let m = nabla::io::load(path).unwrap();
    m.network
        .tensors()
        .iter()
        .map(|t| {
            let v = t.data.iter().map(|x| x.to_bits()).collect();
            (t.name.to_string(), v)
        })
        .collect()
}

#[test]
fn a_cnn_trains_saves_and_is_read_back_by_every_command() {
    let dir = temp_dir("cnn");
    let model = dir.join("cnn.safetensors");
    let m = model.to_str().unwrap();
    let metrics = dir.join("metrics.json");
    let out = stdout(&train_args(&[
        "--save",
        m,
        "--threads",
        "2",
        "--metrics-out",
        metrics.to_str().unwrap(),
    ]));
    // The metrics name the network by its layers, not by the MLP's default widths.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert_eq!(j["layers"], LAYERS, "{j}");
    assert_eq!(j["hidden"], serde_json::json!([]), "{j}");
    assert!(j["augment"].is_null(), "{j}");
    for want in [
        "output shape",
        "6×2×2",
        "conv2d 1 → 4 3×3 pad 1",
        "total parameters",
    ] {
        assert!(out.contains(want), "{want} missing from\n{out}");
    }
    let file = nabla::io::load(&model).unwrap();
    let names: Vec<String> = file
        .network
        .tensors()
        .iter()
        .map(|t| t.name.into())
        .collect();
    for n in [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.running_mean",
        "layers.1.num_batches_tracked",
        "layers.5.weight",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing: {names:?}");
    }
    let t = file.network.tensors();
    let w0 = t.iter().find(|t| t.name == "layers.0.weight").unwrap();
    assert_eq!(w0.shape, &[4, 1, 3, 3]);
    let inspect = stdout(&["inspect", "--model", m]);
    assert!(inspect.contains("format nabla 2"), "{inspect}");
    assert!(inspect.contains("images 1×8×8"), "{inspect}");
    assert!(inspect.contains("max_pool2d 2×2"), "{inspect}");
    let eval = nabla(&["evaluate", "--model", m, "--data", &digits_csv(&dir)]);
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let pred = stdout(&["predict", "--model", m, "--data", &digits_csv(&dir)]);
    assert_eq!(pred.lines().count(), 1798);
    // The same run on one thread gives the same bits.
    let one = dir.join("one.safetensors");
    stdout(&train_args(&[
        "--save",
        one.to_str().unwrap(),
        "--threads",
        "1",
    ]));
    assert_eq!(bits(&model), bits(&one));
}

/// The built-in digits written out as a CSV file.
fn digits_csv(dir: &std::path::Path) -> String {
    let path = dir.join("digits.csv");
    let raw = nabla::data::builtin::DIGITS_CSV;
    std::fs::write(&path, raw).unwrap();
    path.display().to_string()
}

#[test]
fn a_resumed_cnn_run_ends_bit_identical() {
    let dir = temp_dir("resume");
    let run = |tag: &str| {
        let ckpt = dir.join(format!("ckpt-{tag}"));
        let save = dir.join(format!("{tag}.safetensors"));
        let (c, s) = (ckpt.display().to_string(), save.display().to_string());
        stdout(&train_args(&[
            "--epochs",
            "3",
            "--checkpoint-dir",
            &c,
            "--save",
            &s,
            "--threads",
            "2",
        ]));
        (ckpt, save)
    };
    let (_, whole) = run("whole");
    let (ckpt, cut) = run("cut");
    // As if the run had died during epoch 3: its last checkpoint and the model are gone.
    std::fs::remove_file(ckpt.join("epoch-00003.safetensors")).unwrap();
    std::fs::remove_file(&cut).unwrap();
    stdout(&["train", "--resume", ckpt.to_str().unwrap()]);
    assert_eq!(bits(&whole), bits(&cut));
}

#[test]
fn stacks_that_do_not_fit_stop_before_training_with_exit_2() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--layers", "conv 8 3, flatten, dense 10"],
            "the data has 64 columns: pass --image-shape 1x8x8",
        ),
        (
            &[
                "--layers",
                "conv 8 9, flatten, dense 10",
                "--image-shape",
                "1x8x8",
            ],
            "larger than its 1×8×8 input",
        ),
        (
            &[
                "--layers",
                "maxpool 4, maxpool 4, flatten, dense 10",
                "--image-shape",
                "1x8x8",
            ],
            "pools down to zero size",
        ),
        (
            &["--layers", "conv 8 3, dense 10", "--image-shape", "1x8x8"],
            "put `flatten` before it",
        ),
        (
            &[
                "--layers",
                "conv 8 3, flatten, dense 7",
                "--image-shape",
                "1x8x8",
            ],
            "end it with `dense 10`",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["train", "--epochs", "1", "--no-save"];
        a.extend_from_slice(args);
        let out = nabla(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch 1"));
    }
}

#[test]
fn layers_in_a_config_file_and_dense_only_stacks() {
    let dir = temp_dir("config");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "layers = \"conv 2 3, relu, flatten, dense 10\"\nimage_shape = \"1x8x8\"\nepochs = 1\n",
    )
    .unwrap();
    let out = stdout(&["train", "--config", cfg.to_str().unwrap(), "--no-save"]);
    assert!(out.contains("2×6×6"), "{out}");
    // A stack of dense layers reads the values flat, image or not.
    let out = stdout(&[
        "train",
        "--layers",
        "dense 8, relu, dense 10",
        "--epochs",
        "1",
        "--no-save",
    ]);
    assert!(out.contains("linear 64 → 8"), "{out}");
}
