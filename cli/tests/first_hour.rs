//! A newcomer's first hour (issue 16): terminal lines that fit, lr-find that keeps the user's
//! flags, compare that writes where it should, plots that read, and the small stumbles
//! (plurals, run folders as --model, exit codes, config errors naming the file).

mod common;
use common::{nabla, nabla_in, stdout, temp_dir};

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nabla");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `nabla ARGS` under a pseudo-terminal `cols` columns wide (`script`, util-linux), in `dir`.
fn under_pty(dir: &Path, cols: usize, args: &str) -> Option<String> {
    let cmd = format!("stty cols {cols} rows 40 2>/dev/null; {BIN} {args}");
    let out = Command::new("script")
        .current_dir(dir)
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "script failed: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a terminal shows, line by line: escape sequences removed, `\r` starting over.
fn screen_lines(raw: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for physical in raw.split('\n') {
        for part in physical.split('\r') {
            let mut s = String::new();
            let mut chars = part.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    // CSI: ESC [ parameters final-byte.
                    if chars.peek() == Some(&'[') {
                        chars.next();
                        for d in chars.by_ref() {
                            if d.is_ascii_alphabetic() {
                                break;
                            }
                        }
                    }
                } else {
                    s.push(c);
                }
            }
            if !s.trim().is_empty() {
                lines.push(s);
            }
        }
    }
    lines
}

#[test]
fn on_narrow_terminals_no_line_is_longer_than_the_terminal() {
    let dir = temp_dir("narrow");
    for cols in [60, 100] {
        let Some(raw) = under_pty(
            &dir,
            cols,
            "train --hidden 16 --epochs 3 --batch-size 16 --val-split 0.1 --no-save",
        ) else {
            eprintln!("skipped: the `script` command (util-linux) is not installed");
            return;
        };
        let epoch_lines: Vec<String> = screen_lines(&raw)
            .into_iter()
            .filter(|l| l.starts_with("ep"))
            .collect();
        assert!(epoch_lines.len() >= 3, "{cols} columns:\n{raw}");
        for line in &epoch_lines {
            assert!(
                line.chars().count() <= cols,
                "{cols} columns: {} characters: {line:?}",
                line.chars().count()
            );
        }
        // The summaries keep whole numbers: the test loss and accuracy with their 4 decimals.
        let summary = epoch_lines.iter().rfind(|l| l.contains("t.acc")).unwrap();
        assert!(
            summary
                .split_whitespace()
                .any(|w| w.len() == 6 && w.starts_with("0.")),
            "{summary}"
        );
    }
}

#[test]
fn lr_find_suggests_the_users_command_and_says_why_it_stopped() {
    let dir = temp_dir("lr-find");
    let iris = data("iris.csv");
    let iris = iris.to_str().unwrap();
    let out = nabla_in(
        &dir,
        &[
            "lr-find",
            "--data",
            iris,
            "--optimizer",
            "sgd",
            "--hidden",
            "8",
            "--steps",
            "60",
            "--metrics-out",
            "sweep.json",
        ],
    );
    let (o, e) = text(&out);
    assert!(out.status.success(), "{e}");
    assert!(o.contains("the sweep "), "no reason it stopped:\n{o}");
    let command = o
        .lines()
        .find(|l| l.trim_start().starts_with("nabla train "))
        .unwrap_or_else(|| panic!("no suggested command:\n{o}"))
        .trim();
    for part in [
        &format!("--data {iris}"),
        "--optimizer sgd",
        "--hidden 8",
        "--lr ",
    ] {
        assert!(command.contains(part), "{command} lacks {part}");
    }
    assert!(
        !command.contains("--steps") && !command.contains("--metrics-out"),
        "{command}"
    );
    // Pasting it trains the same thing (one epoch here).
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let mut args = args.clone();
    args.extend(["--epochs", "1", "--no-save"]);
    let trained = stdout(&args);
    assert!(
        trained.contains("iris.csv") && trained.contains("sgd"),
        "{trained}"
    );
    // --metrics-out writes the sweep.
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert!(!sweep["points"].as_array().unwrap().is_empty());
    assert!(
        sweep["stop"].is_string() && sweep["suggested_lr"].is_number(),
        "{sweep}"
    );

    // Flags of train it does not use are refused (exit 2), and not listed in its help.
    for flag in [
        ["--epochs", "3"],
        ["--name", "x"],
        ["--early-stopping", "2"],
    ] {
        let out = nabla(&["lr-find", flag[0], flag[1]]);
        let (_, e) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {e}");
        assert!(
            e.contains(flag[0]) && e.contains("does not apply to lr-find"),
            "{e}"
        );
    }
    let help = stdout(&["lr-find", "--help"]);
    for hidden in [
        "--epochs",
        "--name",
        "--early-stopping",
        "--schedule",
        "--save",
    ] {
        // Listed = a line of the flag list starts with it (other flags' help may mention it).
        let listed = help.lines().any(|l| {
            l.trim_start()
                .trim_start_matches("-h, ")
                .starts_with(hidden)
        });
        assert!(!listed, "lr-find --help lists {hidden}");
    }
    for shown in ["--data", "--optimizer", "--steps", "--metrics-out"] {
        assert!(help.contains(shown), "lr-find --help lacks {shown}");
    }
}

/// Trains a short run into `dir/runs/NAME`.
fn run(dir: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["train", "--hidden", "16", "--name", name];
    args.extend(extra);
    let out = nabla_in(dir, &args);
    let (o, e) = text(&out);
    assert!(out.status.success(), "{e}");
    o
}

#[test]
fn compare_writes_into_the_first_run_and_warns_about_mixed_tasks() {
    let dir = temp_dir("compare");
    let houses = data("houses.csv");
    let houses = houses.to_str().unwrap();
    run(&dir, "digits", &["--epochs", "3"]);
    let reg = run(
        &dir,
        "houses",
        &[
            "--data",
            houses,
            "--target",
            "price_k",
            "--drop",
            "id",
            "--impute",
            "median",
            "--epochs",
            "20",
            "--schedule",
            "cosine",
        ],
    );
    // A regression run lists no confusion matrix among its plots.
    assert!(
        reg.contains("plots (learning_curves, lr_schedule;"),
        "{reg}"
    );
    assert!(!dir.join("runs/houses/confusion_matrix.png").exists());
    let out = nabla_in(&dir, &["compare", "runs/digits", "runs/houses"]);
    let (o, e) = text(&out);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("warning: comparing regression run houses with classification run digits"),
        "{e}"
    );
    assert!(o.contains("runs/digits/compare.png"), "{o}");
    assert!(dir.join("runs/digits/compare.svg").is_file());
    assert!(
        !dir.join("compare.png").exists(),
        "written into the current folder"
    );
    let svg = std::fs::read_to_string(dir.join("runs/digits/compare.svg")).unwrap();
    for part in ["Loss (cross-entropy / MSE)", "Accuracy", "R²"] {
        assert!(svg.contains(part), "compare.svg lacks {part}");
    }
    // Regression alone: MSE titled as such, R² beside it, log axis as the loss spans decades.
    let curves = std::fs::read_to_string(dir.join("runs/houses/learning_curves.svg")).unwrap();
    assert!(curves.contains("Loss (MSE") && curves.contains("R²"));
    // The loss axis is logarithmic exactly when the losses span more than a decade.
    let history: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("runs/houses/history.json")).unwrap(),
    )
    .unwrap();
    let losses: Vec<f64> = history["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| [m["train_loss"].as_f64(), m["test_loss"].as_f64()])
        .flatten()
        .collect();
    let spread = losses.iter().cloned().fold(0.0, f64::max)
        / losses.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(
        curves.contains("log scale"),
        spread > 10.0,
        "spread {spread}"
    );
    let lr = std::fs::read_to_string(dir.join("runs/houses/lr_schedule.svg")).unwrap();
    assert!(
        lr.contains("cosine schedule"),
        "the lr plot names its schedule"
    );
    let help = stdout(&["compare", "--help"]);
    assert_eq!(help.matches("[default:").count(), 1, "{help}");
}

#[test]
fn confusion_matrix_plot_makes_room_for_long_class_names() {
    let dir = temp_dir("long-names");
    let iris = std::fs::read_to_string(data("iris.csv")).unwrap();
    let long = iris
        .replace(",setosa", ",Iris-setosa-subspecies")
        .replace(",versicolor", ",Iris-versicolor-var-longname");
    std::fs::write(dir.join("long.csv"), long).unwrap();
    run(&dir, "long", &["--data", "long.csv", "--epochs", "5"]);
    run(
        &dir,
        "short",
        &[
            "--data",
            data("iris.csv").to_str().unwrap(),
            "--epochs",
            "5",
        ],
    );
    let size = |run: &str| {
        let png = std::fs::read(dir.join(format!("runs/{run}/confusion_matrix.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
        (be(16), be(20))
    };
    let (short, long) = (size("short"), size("long"));
    assert!(long.0 > short.0 && long.1 > short.1, "{short:?} → {long:?}");
    let svg = std::fs::read_to_string(dir.join("runs/long/confusion_matrix.svg")).unwrap();
    for part in [
        "Iris-setosa-subspecies",
        "Iris-versicolor-var-longname",
        "true class",
        "log scale",
    ] {
        assert!(svg.contains(part), "confusion_matrix.svg lacks {part}");
    }
}

#[test]
fn small_stumbles_are_gone() {
    let dir = temp_dir("stumbles");
    let zero = run(&dir, "zero", &["--epochs", "0"]);
    assert!(!zero.contains("-0.00s"), "{zero}");
    let one = run(&dir, "first-try", &["--epochs", "1"]);
    assert!(one.contains(", 1 epoch,"), "{one}");
    // --model takes a run folder; a missing model exits 2 like missing data.
    let inspect = nabla_in(&dir, &["inspect", "--model", "runs/first-try"]);
    assert!(inspect.status.success(), "{}", text(&inspect).1);
    assert!(
        text(&inspect)
            .0
            .contains("runs/first-try/model.safetensors")
    );
    let evaluate = nabla_in(
        &dir,
        &[
            "evaluate",
            "--model",
            "runs/first-try",
            "--data",
            data("digits.csv").to_str().unwrap(),
        ],
    );
    let (o, e) = text(&evaluate);
    assert!(evaluate.status.success(), "{e}");
    // The confusion matrix has its column headings: the predicted classes.
    let heading = o
        .lines()
        .find(|l| l.starts_with("true \\ predicted"))
        .unwrap();
    assert_eq!(
        heading.split_whitespace().skip(3).collect::<Vec<_>>(),
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    for missing in ["runs/none/model.safetensors", "runs"] {
        let out = nabla_in(&dir, &["inspect", "--model", missing]);
        assert_eq!(out.status.code(), Some(2), "{missing}: {}", text(&out).1);
    }
    let out = nabla(&["plot", "/nowhere/at/all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no such folder"), "{}", text(&out).1);
    // Config files: a bad value names the file and key; a TOML error its line.
    std::fs::write(dir.join("bad.toml"), "epochs = 2\noptimizer = \"adma\"\n").unwrap();
    let (_, e) = text(&nabla_in(&dir, &["train", "--config", "bad.toml"]));
    assert!(
        e.contains("bad.toml") && e.contains("key 'optimizer'") && e.contains("adma"),
        "{e}"
    );
    std::fs::write(dir.join("syntax.toml"), "epochs = 2\nlr = = 1\n").unwrap();
    let out = nabla_in(&dir, &["train", "--config", "syntax.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("syntax.toml: line 2"),
        "{}",
        text(&out).1
    );
    // The tiny explain JSON names the class as its text does.
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&["explain", "--format", "json"])).unwrap();
    assert_eq!(v["true_class"], 1);
    assert_eq!(v["target"], serde_json::json!([1, 0]));
    assert!(v.get("label").is_none());
    assert!(stdout(&["explain"]).contains("true class 1 (target y = (1, 0))"));
}
