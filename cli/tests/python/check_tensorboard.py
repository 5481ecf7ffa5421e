"""TensorBoard event files read back with TensorBoard's own reader (EventAccumulator): every
per-epoch value must equal history.json's (as float32, the type a scalar summary holds), there
must be one `iteration/loss` and `iteration/learning_rate` point per training iteration, and a
classification run must hold its confusion matrix as the PNG image of the plot.

Runs: the built-in digits with a validation split (classification), a generated regression
CSV, and any `RUN_DIR:METRICS_JSON` pairs given (e.g. CI's MNIST run).

Usage: python check_tensorboard.py NABLA [RUN_DIR:METRICS_JSON ...]
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

FIELDS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_r2", "test_loss",
          "test_accuracy", "test_mae", "test_rmse", "test_r2", "learning_rate"]


def check_run(name, run_dir, metrics_path):
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    with open(metrics_path) as f:
        metrics = json.load(f)
    files = glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))
    assert len(files) == 1, files
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    problems, compared = [], 0
    for field in FIELDS:
        want = [(e["epoch"], e[field]) for e in history["epochs"] if e.get(field) is not None]
        tag = f"epoch/{field}"
        if not want:
            if tag in tags["scalars"]:
                problems.append(f"{tag} present but not in history.json")
            continue
        got = [(s.step, s.value) for s in acc.Scalars(tag)]
        if [s for s, _ in got] != [s for s, _ in want]:
            problems.append(f"{tag}: steps {[s for s, _ in got]} != epochs {[s for s, _ in want]}")
            continue
        for (step, v), (_, w) in zip(got, want):
            compared += 1
            if np.float32(v) != np.float32(w):
                problems.append(f"{tag} epoch {step}: {v} != history.json {w}")
    iterations = metrics["iterations_per_epoch"] * len(history["epochs"])
    losses = acc.Scalars("iteration/loss")
    rates = acc.Scalars("iteration/learning_rate")
    if len(losses) != iterations or len(rates) != iterations:
        problems.append(f"{len(losses)} iteration/loss and {len(rates)} iteration/learning_rate points, "
                        f"expected {iterations}")
    if [s.step for s in losses] != list(range(1, iterations + 1)):
        problems.append("iteration steps are not 1..n")
    per_epoch = metrics["iterations_per_epoch"]
    for s in rates:
        lr = history["epochs"][(s.step - 1) // per_epoch]["learning_rate"]
        if np.float32(s.value) != np.float32(lr):
            problems.append(f"iteration {s.step}: learning rate {s.value} != epoch's {lr}")
            break
    image = ""
    if history["confusion_matrix"]:
        with open(os.path.join(run_dir, "confusion_matrix.png"), "rb") as f:
            png = f.read()
        images = acc.Images("confusion_matrix") if "confusion_matrix" in tags["images"] else []
        if len(images) != 1 or images[0].encoded_image_string != png:
            problems.append("the confusion_matrix image is missing or differs from confusion_matrix.png")
        else:
            image = f", confusion matrix image {images[0].width}×{images[0].height}"
    ok = not problems
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {compared} per-epoch values equal history.json, "
          f"{len(losses)} iteration points ({iterations} iterations){image}")
    for p in problems[:10]:
        print(f"     {p}")
    return ok


def train(nabla, tmp, name, *flags):
    run_dir, metrics = os.path.join(tmp, name), os.path.join(tmp, f"{name}.json")
    r = subprocess.run([nabla, "train", "--run-dir", run_dir, "--metrics-out", metrics, *flags],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: nabla train {' '.join(flags)} exited {r.returncode}:\n{r.stderr}")
    return run_dir, metrics


def main():
    nabla, extra = sys.argv[1], sys.argv[2:]
    tmp = tempfile.mkdtemp(prefix="nabla-tensorboard-")
    reg = os.path.join(tmp, "regression.csv")
    rng = np.random.default_rng(3)
    with open(reg, "w") as f:
        f.write("a,b,y\n")
        for _ in range(200):
            a, b = rng.normal(size=2)
            f.write(f"{a:.4f},{b:.4f},{2 * a - b + rng.normal(0, 0.1):.4f}\n")
    runs = [
        ("built-in digits, validation split, cosine schedule",
         *train(nabla, tmp, "digits", "--epochs", "3", "--val-split", "0.1", "--hidden", "32",
                "--schedule", "cosine", "--seed", "1")),
        ("regression CSV", *train(nabla, tmp, "regression", "--data", reg, "--target", "y",
                                  "--hidden", "8", "--epochs", "4", "--seed", "1")),
    ]
    for pair in extra:
        run_dir, metrics = pair.rsplit(":", 1)
        runs.append((run_dir, run_dir, metrics))
    ok = all([check_run(*r) for r in runs])
    if not ok:
        print("FAIL: TensorBoard events differ from history.json", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
