//! Layer stacks that do not fit their input stop before training with exit code 2 and say which
//! layer and what to do (issue 12 item 7), beyond the cases in cnn.rs: the issue's own example
//! (a conv on a CSV of 784 pixel columns), image layers after `flatten` or a dense layer, a
//! dense layer on the input image, a kernel larger than its input deeper in the stack, pooling
//! to zero size after a convolution, and an image shape that does not hold the data.

mod common;
use common::{nabla, temp_dir};

/// A CSV of 784 pixel columns and a label, 20 rows.
fn pixels_csv() -> String {
    let dir = temp_dir("pixels");
    let path = dir.join("pixels.csv");
    let mut text: String = (0..784).map(|j| format!("p{j},")).collect();
    text += "label\n";
    for r in 0..20 {
        let row: String = (0..784)
            .map(|j| format!("{},", (r * 7 + j) % 256))
            .collect();
        text += &format!("{row}{}\n", r % 2);
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn stacks_that_do_not_fit_their_input_are_refused_before_training() {
    let csv = pixels_csv();
    let digits: &[&str] = &["--image-shape", "1x8x8"];
    let cases: [(Vec<&str>, &[&str], &str); 7] = [
        (
            vec!["--data", &csv, "--layers", "conv 4 3, flatten, dense 2"],
            &[],
            "layer 0: conv2d expects an image input (C×H×W), the data has 784 columns: pass \
             --image-shape 1x28x28",
        ),
        (
            vec!["--layers", "conv 4 3, flatten, conv 8 3, flatten, dense 10"],
            digits,
            "layer 2: conv2d needs an image (C×H×W), but the layer before gives 144 flat \
             features: image layers cannot follow `flatten` or a dense layer",
        ),
        (
            vec!["--layers", "dense 20, relu, maxpool 2, flatten, dense 10"],
            digits,
            "layer 0: a dense layer cannot take the 1×8×8 input image: put `flatten` before it",
        ),
        (
            vec![
                "--layers",
                "conv 4 3, maxpool 2, conv 4 5, flatten, dense 10",
            ],
            digits,
            "layer 2: the conv2d kernel 5×5 (span 5) is larger than its 4×3×3 input with padding 0",
        ),
        (
            vec!["--layers", "conv 4 5, maxpool 5, flatten, dense 10"],
            digits,
            "layer 1: max_pool2d 5×5 of the 4×4×4 input pools down to zero size",
        ),
        (
            vec!["--layers", "conv 4 3, flatten, dense 10"],
            &["--image-shape", "1x7x7"],
            "--image-shape 1x7x7 holds 49 values, the data has 64 columns",
        ),
        (
            vec!["--layers", "conv 4 3, flatten, dense 10"],
            &["--image-shape", "1x8"],
            "--image-shape must be CxHxW (like 1x28x28)",
        ),
    ];
    for (layers, extra, want) in cases {
        let mut args = vec!["train", "--epochs", "1", "--no-save"];
        args.extend(layers);
        args.extend_from_slice(extra);
        let out = nabla(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}:\n{err}\nwanted: {want}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch 1"));
    }
}
