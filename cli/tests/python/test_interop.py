"""Interop proof: nabla model files without nabla, and Python-written files in nabla.

1. Trains small models with the release binary (built-in digits: plain, with batch norm,
   dropout and tanh, and convolutional networks on 1x8x8 images: conv with padding, stride and
   dilation, batch norm over channels, max/average/global pooling, flatten), loads each file with safetensors.numpy only, rebuilds the network from the
   `spec` metadata in numpy, applies `preprocess`, and reproduces `nabla predict`'s
   probabilities to <= 1e-5.
2. Writes a model file from Python (same tensor names and metadata), predicts with
   `nabla predict`, and compares with the numpy forward pass.

Usage: python cli/tests/python/test_interop.py [path/to/nabla]   (default target/release/nabla)
"""

import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NABLA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "nabla")
DIGITS = os.path.join(ROOT, "data", "digits.csv")
TOL = 1e-5


def metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))["__metadata__"]


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def conv2d(x, w, b, stride, pad, dil):
    """PyTorch's Conv2d on (N, C, H, W) with weight (O, C, k, k): one einsum per kernel tap."""
    n, c, hh, ww = x.shape
    k = w.shape[2]
    span = dil * (k - 1) + 1
    oh, ow = (hh + 2 * pad - span) // stride + 1, (ww + 2 * pad - span) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, w.shape[0], oh, ow), dtype=np.float64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, :, ky * dil: ky * dil + stride * (oh - 1) + 1: stride,
                       kx * dil: kx * dil + stride * (ow - 1) + 1: stride]
            out += np.einsum("nchw,oc->nohw", patch.astype(np.float64), w[:, :, ky, kx].astype(np.float64))
    return (out + b[None, :, None, None]).astype(np.float32)


def pool2d(x, k, stride, reduce):
    """Max or average over k×k windows (no padding) of (N, C, H, W)."""
    n, c, hh, ww = x.shape
    oh, ow = (hh - k) // stride + 1, (ww - k) // stride + 1
    taps = [x[:, :, ky: ky + stride * (oh - 1) + 1: stride, kx: kx + stride * (ow - 1) + 1: stride]
            for ky in range(k) for kx in range(k)]
    return reduce(np.stack(taps), axis=0).astype(np.float32)


def image_layer(t, layer, tensors, prefix, i, h):
    """The image layers of a spec on (N, C, H, W); None for a layer that is not one."""
    if t == "conv2d":
        w, b = tensors[f"{prefix}{i}.weight"], tensors[f"{prefix}{i}.bias"]
        k = layer["kernel"]
        assert w.shape == (layer["out"], layer["in"], k, k) and b.shape == (layer["out"],)
        return conv2d(h, w, b, layer.get("stride", 1), layer.get("padding", 0), layer.get("dilation", 1))
    if t == "max_pool2d":
        return pool2d(h, layer["kernel"], layer["stride"], np.max)
    if t == "avg_pool2d":
        return pool2d(h, layer["kernel"], layer["stride"], np.mean)
    if t == "global_avg_pool":
        return h.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    if t == "batch_norm2d":
        g, b = tensors[f"{prefix}{i}.weight"], tensors[f"{prefix}{i}.bias"]
        m, v = tensors[f"{prefix}{i}.running_mean"], tensors[f"{prefix}{i}.running_var"]
        s = g / np.sqrt(v + np.float32(layer.get("eps", 1e-5)))
        return h * s[None, :, None, None] + (b - m * s)[None, :, None, None]
    if t == "flatten":
        return h.reshape(h.shape[0], -1)  # C,H,W order, as torch.flatten
    if t == "dropout2d":
        return h
    return None


def layers_forward(layers, tensors, prefix, h):
    """The layers in order on h; layer i's tensors are named prefix + "{i}." + name."""
    for i, layer in enumerate(layers):
        t = layer["type"]
        image = image_layer(t, layer, tensors, prefix, i, h)
        if image is not None:
            h = image
        elif t == "residual":  # x + f(x), f's tensors under layers.{i}.block.
            h = h + layers_forward(layer["layers"], tensors, f"{prefix}{i}.block.", h)
        elif t == "linear":
            w, b = tensors[f"{prefix}{i}.weight"], tensors[f"{prefix}{i}.bias"]
            assert w.shape == (layer["out"], layer["in"]) and b.shape == (layer["out"],)
            h = h @ w.T + b
        elif t == "batch_norm":
            g, b = tensors[f"{prefix}{i}.weight"], tensors[f"{prefix}{i}.bias"]
            m, v = tensors[f"{prefix}{i}.running_mean"], tensors[f"{prefix}{i}.running_var"]
            eps = np.float32(layer.get("eps", 1e-5))
            s = g / np.sqrt(v + eps)
            h = h * s + (b - m * s)
        elif t == "relu":
            h = np.maximum(h, 0)
        elif t == "sigmoid":
            h = 1 / (1 + np.exp(-h))
        elif t == "tanh":
            h = np.tanh(h)
        elif t == "leaky_relu":
            h = np.where(h > 0, h, np.float32(layer["slope"]) * h)
        elif t == "gelu":
            h = (h * 0.5 * (1 + erf(h.astype(np.float64) / math.sqrt(2)))).astype(np.float32)
        elif t == "dropout":
            pass
        else:
            raise ValueError(f"unknown layer type {t}")
        h = h.astype(np.float32)
    return h


def forward(tensors, spec, x):
    """Evaluation-mode forward pass in float32, exactly as the spec says."""
    h = x.astype(np.float32)
    if spec.get("input_shape"):
        h = h.reshape(h.shape[0], *spec["input_shape"])
    h = layers_forward(spec["layers"], tensors, "layers.", h)
    if spec["task"] == "classification":
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return h


def encode(pre, rows):
    """The preprocess contract: encoded row (numbers, one-hot categories) -> (x - center) / scale."""
    out = []
    for row in rows:
        enc = []
        for col in pre["columns"]:
            cell = row[col["name"]].strip()
            if col["type"] == "numeric":
                enc.append(float(cell))
            else:
                enc.extend(1.0 if cell == c else 0.0 for c in col["categories"])
        out.append(enc)
    x = np.array(out, dtype=np.float64)
    return ((x - np.array(pre["center"])) / np.array(pre["scale"])).astype(np.float32)


def nabla_predict(model, data, out):
    subprocess.run([NABLA, "predict", "--model", model, "--data", data, "--out", out], check=True,
                   stderr=subprocess.DEVNULL)
    with open(out) as f:
        r = list(csv.reader(f))
    return r[0], np.array([[float(v) for v in row[1:]] for row in r[1:]]), [row[0] for row in r[1:]]


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return ok


def main():
    with open(DIGITS) as f:
        rows = list(csv.DictReader(f))
    tmp = tempfile.mkdtemp(prefix="nabla-interop-")
    results = []
    configs = {
        "relu": ["--hidden", "32,16"],
        "batchnorm-dropout-tanh": ["--hidden", "24", "--batch-norm", "--dropout", "0.2", "--activation", "tanh"],
        "gelu": ["--hidden", "16", "--activation", "gelu"],
    }
    cnn = ("conv 4 3 pad 1, batchnorm, relu, maxpool 2, dropout2d 0.1, conv 6 2 stride 2, relu, "
           "avgpool 2 stride 1, gap, flatten, dense 10")
    configs["cnn"] = ["--layers", cnn, "--image-shape", "1x8x8"]
    configs["cnn-dilated"] = ["--layers", "conv 3 3 dilation 2 pad 1, relu, flatten, dense 10",
                              "--image-shape", "1x8x8"]
    configs["residual"] = ["--layers", "dense 24, relu, residual(dense 24, batchnorm, gelu, dense 24), "
                           "relu, dense 10"]
    configs["cnn-residual"] = ["--layers", "conv 4 3 pad 1, relu, residual(conv 4 3 pad 1, batchnorm, "
                               "relu, conv 4 3 pad 1), relu, maxpool 2, flatten, dense 10",
                               "--image-shape", "1x8x8"]
    for name, flags in configs.items():
        model = os.path.join(tmp, f"{name}.safetensors")
        subprocess.run([NABLA, "train", "--epochs", "3", "--threads", "1", "--save", model, *flags],
                       check=True, stdout=subprocess.DEVNULL)
        tensors = load_file(model)
        meta = metadata(model)
        spec, pre = json.loads(meta["spec"]), json.loads(meta["preprocess"])
        version = "3" if "residual" in name else "2" if name.startswith("cnn") else "1"
        assert meta["format"] == "nabla" and meta["format_version"] == version, meta["format_version"]
        json.loads(meta["training"])
        probs = forward(tensors, spec, encode(pre, rows))
        header, theirs, labels = nabla_predict(model, DIGITS, os.path.join(tmp, f"{name}.csv"))
        assert header == ["prediction"] + [f"p_{c}" for c in spec["classes"]], header
        diff = float(np.abs(probs - theirs).max())
        same_labels = labels == [spec["classes"][k] for k in probs.argmax(axis=1)]
        results.append(check(f"nabla -> numpy [{name}]", diff <= TOL and probs.shape == theirs.shape,
                             f"max |p_numpy - p_nabla| = {diff:.2e} over {theirs.shape[0]} rows"
                             f"{'' if same_labels else ' (argmax labels differ on ties)'}"))

    # Reverse: a model written by Python.
    rng = np.random.default_rng(0)
    feats = [f"pixel_{i}" for i in range(64)]
    spec = {"inputs": 64, "layers": [
        {"type": "linear", "in": 64, "out": 20}, {"type": "batch_norm", "features": 20, "eps": 1e-5, "momentum": 0.1},
        {"type": "leaky_relu", "slope": 0.05}, {"type": "dropout", "p": 0.1},
        {"type": "linear", "in": 20, "out": 10}],
        "task": "classification", "classes": [str(c) for c in range(10)]}
    tensors = {
        "layers.0.weight": rng.normal(0, 0.3, (20, 64)).astype(np.float32),
        "layers.0.bias": rng.normal(0, 0.1, 20).astype(np.float32),
        "layers.1.weight": rng.uniform(0.5, 1.5, 20).astype(np.float32),
        "layers.1.bias": rng.normal(0, 0.1, 20).astype(np.float32),
        "layers.1.running_mean": rng.normal(0, 1, 20).astype(np.float32),
        "layers.1.running_var": rng.uniform(0.5, 3, 20).astype(np.float32),
        "layers.1.num_batches_tracked": np.array(100, dtype=np.int64),
        "layers.4.weight": rng.normal(0, 0.3, (10, 20)).astype(np.float32),
        "layers.4.bias": rng.normal(0, 0.1, 10).astype(np.float32),
    }
    pre = {"features": feats, "center": [8.0] * 64, "scale": [4.0] * 64, "scaling": "standard",
           "columns": [{"type": "numeric", "name": f, "impute": None} for f in feats],
           "target": {"name": "digit", "task": "classification", "classes": spec["classes"],
                      "center": 0.0, "scale": 1.0}}
    model = os.path.join(tmp, "python.safetensors")
    save_file(tensors, model, metadata={"format": "nabla", "format_version": "1",
                                        "spec": json.dumps(spec), "preprocess": json.dumps(pre),
                                        "training": json.dumps({"written_by": "python"})})
    probs = forward(tensors, spec, encode(pre, rows))
    _, theirs, _ = nabla_predict(model, DIGITS, os.path.join(tmp, "python.csv"))
    diff = float(np.abs(probs - theirs).max())
    results.append(check("numpy -> nabla [python-written file]", diff <= TOL,
                         f"max |p_numpy - p_nabla| = {diff:.2e} over {theirs.shape[0]} rows"))

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
