"""ONNX export checked by ONNX Runtime: `nabla export --format onnx` must give what `nabla predict`
gives, to 1e-5, with the preprocessing inside the graph (raw columns in, probabilities or the
target's value out).

For each model: export, `onnx.checker.check_model(full_check=True)`, run the graph with
onnxruntime on the raw rows (numeric columns as read from the file, categorical columns as
strings, missing cells as NaN / ""), run `nabla predict` on the same file, compare.

Models: the built-in digits (ReLU; GELU with batch norm and dropout; tanh; sigmoid; leaky ReLU;
two CNNs read as 1×8×8 images: convolution with padding, stride and dilation, batch norm over
channels, max, average and global average pooling, channel dropout, flatten),
a regression CSV with a categorical column and missing cells (generated here), and with
--mnist-model/--mnist an MNIST model on the t10k images.

Usage: python check_onnx.py NABLA [--mnist-model FILE --mnist DIR]
Prints one line per model with the max |ONNX − nabla predict|; exits 1 on any failure.
"""

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DIGITS = os.path.join(ROOT, "data", "digits.csv")
TOL = 1e-5
MISSING = {"", "na", "n/a", "nan", "null"}


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {r.returncode}:\n{r.stderr}")


def export(nabla, model, out):
    run(nabla, "export", "--model", model, "--format", "onnx", "--out", out)
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    opsets = {o.domain: o.version for o in m.opset_import}
    assert opsets.get("") == 17 and opsets.get("ai.onnx.ml") == 3, opsets
    return m, {p.key: p.value for p in m.metadata_props}


def nabla_predict(nabla, model, data, out):
    run(nabla, "predict", "--model", model, "--data", data, "--out", out)
    with open(out) as f:
        r = list(csv.reader(f))
    return r[0], np.array([[float(v) for v in row[1:]] if len(row) > 1 else [float(row[0])] for row in r[1:]])


def csv_feeds(meta, path):
    """ONNX inputs from a CSV's raw cells: `numeric` float [N, n]; each categorical column a string [N, 1]."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    num = json.loads(meta["numeric_columns"])
    feeds = {}
    if num:
        cell = lambda s: np.nan if s.strip().lower() in MISSING else float(s)
        feeds["numeric"] = np.array([[cell(r[c]) for c in num] for r in rows], dtype=np.float32)
    for inp, col in zip(json.loads(meta["categorical_inputs"]), json.loads(meta["categorical_columns"])):
        text = lambda s: "" if s.strip().lower() in MISSING else s.strip()
        feeds[inp] = np.array([[text(r[col])] for r in rows], dtype=object)
    return feeds


def idx_images(path):
    with gzip.open(path) as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h * w).astype(np.float32)


def compare(name, m, meta, feeds, header, theirs):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = sess.run(None, feeds)[0]
    if meta["task"] == "classification":
        classes = json.loads(meta["classes"])
        assert header == ["prediction"] + [f"p_{c}" for c in classes], (header, classes)
        assert sess.get_outputs()[0].name == "probabilities"
    else:
        assert header == ["prediction"] and sess.get_outputs()[0].name == "value"
    ok = ours.shape == theirs.shape and np.all(np.isfinite(ours))
    diff = float(np.abs(ours - theirs).max()) if ok else float("inf")
    ok = ok and diff <= TOL
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max |onnx - nabla predict| = {diff:.2e} over {theirs.shape[0]} rows × {theirs.shape[1]}")
    return ok


def regression_csv(path):
    """300 rows: two numbers, a colour (some cells missing), target y in small units."""
    rng = np.random.default_rng(7)
    colours = ["red", "green", "blue", "dark grey"]
    effect = {"red": 1.0, "green": -0.5, "blue": 0.25, "dark grey": 2.0}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "weight", "colour", "y"])
        for i in range(300):
            a, b, c = rng.normal(3, 1), rng.normal(-1, 2), colours[rng.integers(4)]
            y = 1.5 * a - 0.7 * b + effect[c] + rng.normal(0, 0.1)
            w.writerow(["" if i % 37 == 5 else f"{a:.4f}", "NA" if i % 41 == 3 else f"{b:.4f}",
                        "" if i % 29 == 7 else c, f"{y:.4f}"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nabla")
    ap.add_argument("--mnist-model")
    ap.add_argument("--mnist")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="nabla-onnx-")
    ok = True
    digits = {
        "relu": ["--hidden", "32,16"],
        "gelu-batchnorm-dropout": ["--hidden", "24,12", "--activation", "gelu", "--batch-norm", "--dropout", "0.2"],
        "tanh": ["--hidden", "16", "--activation", "tanh"],
        "sigmoid": ["--hidden", "16", "--activation", "sigmoid"],
        "leaky-relu": ["--hidden", "16", "--activation", "leaky-relu"],
        "cnn-conv-batchnorm-maxpool": ["--image-shape", "1x8x8", "--layers",
            "conv 8 3 pad 1, batchnorm, relu, maxpool 2, conv 12 3 stride 1 dilation 1, relu, "
            "dropout2d 0.1, flatten, dense 16, relu, dense 10"],
        "cnn-avgpool-gap": ["--image-shape", "1x8x8", "--layers",
            "conv 6 3 stride 2 pad 1, tanh, avgpool 2 stride 1, conv 10 2, gelu, globalavgpool, "
            "flatten, dense 10"],
        "residual-mlp": ["--layers",
            "dense 24, relu, residual(dense 24, batchnorm, gelu, dropout 0.1, dense 24), relu, dense 10"],
        "residual-cnn": ["--image-shape", "1x8x8", "--layers",
            "conv 4 3 pad 1, relu, residual(conv 4 3 pad 1, batchnorm, relu, conv 4 3 pad 1), relu, "
            "maxpool 2, flatten, dense 10"],
    }
    cases = []
    for name, flags in digits.items():
        model = os.path.join(tmp, f"digits-{name}.safetensors")
        run(a.nabla, "train", "--epochs", "2", "--seed", "1", "--no-save", "--save", model, *flags)
        cases.append((f"built-in digits [{name}]", model, DIGITS, csv_feeds))
    reg = os.path.join(tmp, "regression.csv")
    regression_csv(reg)
    model = os.path.join(tmp, "regression.safetensors")
    run(a.nabla, "train", "--data", reg, "--target", "y", "--impute", "mean", "--hidden", "16",
        "--epochs", "5", "--seed", "1", "--no-save", "--save", model)
    cases.append(("regression CSV with a categorical column and missing cells", model, reg, csv_feeds))
    if a.mnist_model:
        images = os.path.join(a.mnist, "t10k-images-idx3-ubyte.gz")
        cases.append(("MNIST (t10k images)", a.mnist_model, a.mnist,
                      lambda meta, _: {"numeric": idx_images(images)}))
    for name, model, data, feeds in cases:
        stem = os.path.join(tmp, os.path.basename(model))
        m, meta = export(a.nabla, model, stem + ".onnx")
        header, theirs = nabla_predict(a.nabla, model, data, stem + ".csv")
        ok = compare(name, m, meta, feeds(meta, data), header, theirs) and ok
    if not ok:
        print("FAIL: the ONNX export differs from nabla predict", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
