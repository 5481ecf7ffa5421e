//! `--augment shift=N,rotate=D,flip` through the binary: the same bits for any thread count (the
//! draws depend on seed, epoch and sample only), a real change of the training run, exact
//! resume, the config.toml key, and the refusals (exit 2) of bad specs, non-image data,
//! per-column scaling and shifts that move the image out of view. The transforms themselves
//! are checked pixel by pixel on hand-made images in `nabla::data::augment`'s unit tests.

mod common;
use common::{nabla, stdout, temp_dir};

/// A small CNN on the built-in digits read as 1×8×8 images, unscaled (0..16).
fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--layers",
        "conv 4 3 pad 1, relu, maxpool 2, flatten, dense 10",
        "--image-shape",
        "1x8x8",
        "--scale",
        "none",
        "--epochs",
        "2",
        "--batch-size",
        "128",
        "--seed",
        "5",
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
            (
                t.name.to_string(),
                t.data.iter().map(|x| x.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn augmented_training_is_the_same_for_any_thread_count_and_changes_the_run() {
    let dir = temp_dir("augment-threads");
    let run = |tag: &str, extra: &[&str]| {
        let path = dir.join(format!("{tag}.safetensors"));
        let mut a = train_args(&["--save", path.to_str().unwrap()]);
        a.extend_from_slice(extra);
        let out = stdout(&a);
        (bits(&path), out)
    };
    let spec = ["--augment", "shift=2,rotate=15,flip"];
    let (one, out) = run("one", &[&spec[..], &["--threads", "1"]].concat());
    assert!(
        out.contains(
            "augment: shift ±2 px (zero fill), rotate ±15° (bilinear, zero fill), horizontal flip"
        ),
        "{out}"
    );
    let (two, _) = run("two", &[&spec[..], &["--threads", "2"]].concat());
    assert_eq!(one, two, "1 and 2 threads differ");
    let (plain, out) = run("plain", &["--threads", "2"]);
    assert!(!out.contains("augment:"), "{out}");
    assert_ne!(one, plain, "augmentation changed nothing");
    // `none` turns it off (e.g. over a config file's setting).
    let (off, _) = run("off", &["--augment", "none", "--threads", "2"]);
    assert_eq!(off, plain);
}

#[test]
fn augment_is_a_config_key_and_a_resumed_run_ends_bit_identical() {
    let dir = temp_dir("augment-resume");
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, "augment = \"shift=1,rotate=10\"\n").unwrap();
    let run = |tag: &str| {
        let ckpt = dir.join(format!("ckpt-{tag}"));
        let save = dir.join(format!("{tag}.safetensors"));
        let (c, s) = (ckpt.display().to_string(), save.display().to_string());
        let out = stdout(&train_args(&[
            "--config",
            cfg.to_str().unwrap(),
            "--epochs",
            "3",
            "--checkpoint-dir",
            &c,
            "--save",
            &s,
        ]));
        assert!(out.contains("augment: shift ±1 px"), "{out}");
        (ckpt, save)
    };
    let (_, whole) = run("whole");
    let (ckpt, cut) = run("cut");
    std::fs::remove_file(ckpt.join("epoch-00003.safetensors")).unwrap();
    std::fs::remove_file(&cut).unwrap();
    stdout(&["train", "--resume", ckpt.to_str().unwrap()]);
    assert_eq!(bits(&whole), bits(&cut));
}

#[test]
fn bad_augmentation_stops_before_training_with_exit_2() {
    let iris = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/iris.csv");
    let cases: [(Vec<&str>, &str); 6] = [
        (
            train_args(&["--augment", "zoom=2"]),
            "--augment \"zoom=2\": unknown transform \"zoom\"; write comma-separated shift=PIXELS",
        ),
        (
            train_args(&["--augment", "rotate=270"]),
            "rotate takes degrees from 0 to 180",
        ),
        (
            train_args(&["--augment", "shift=1.5"]),
            "shift takes a whole number of pixels",
        ),
        (
            train_args(&["--augment", "shift=8"]),
            "--augment shift=8 can move the whole 1×8×8 image out of view: shift at most 7",
        ),
        (
            vec![
                "train",
                "--data",
                iris,
                "--augment",
                "flip",
                "--epochs",
                "1",
                "--no-save",
            ],
            "is not images: its 4 columns have no image shape (give one with --image-shape",
        ),
        (
            vec![
                "train",
                "--image-shape",
                "1x8x8",
                "--augment",
                "shift=1",
                "--epochs",
                "1",
                "--no-save",
            ],
            "but --scale standard scales every column on its own, so a moved pixel would be \
             scaled as its new column: pass --scale none",
        ),
    ];
    for (args, want) in cases {
        let out = nabla(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch 1"));
    }
}
