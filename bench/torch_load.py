"""Loads a nabla model file into PyTorch with load_state_dict (strict) for the equivalent
nn.Sequential held in an attribute `layers`, and compares its probabilities with nabla's.

Not in CI (torch is heavy). Usage:
  nabla train --hidden 32 --batch-norm --dropout 0.1 --save /tmp/m.safetensors
  (or --layers "dense 32, relu, residual(dense 32, batchnorm, relu, dense 32), dense 10")
  nabla predict --model /tmp/m.safetensors --data data/digits.csv --out /tmp/p.csv
  python bench/torch_load.py /tmp/m.safetensors data/digits.csv /tmp/p.csv
"""

import csv
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file

model_path, data_path, preds_path = sys.argv[1:4]
with open(model_path, "rb") as f:
    n = int.from_bytes(f.read(8), "little")
    meta = json.loads(f.read(n))["__metadata__"]
spec, pre = json.loads(meta["spec"]), json.loads(meta["preprocess"])


def build(layers):
    """The torch modules of a nabla layer list (a residual block holds its own list)."""
    mods = []
    for layer in layers:
        t = layer["type"]
        mods.append({
            "linear": lambda: torch.nn.Linear(layer["in"], layer["out"]),
            "batch_norm": lambda: torch.nn.BatchNorm1d(layer["features"], eps=layer["eps"], momentum=layer["momentum"]),
            "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh,
            "gelu": torch.nn.GELU,
            "leaky_relu": lambda: torch.nn.LeakyReLU(layer["slope"]),
            "dropout": lambda: torch.nn.Dropout(layer["p"]),
            "residual": lambda: Residual(layer["layers"]),
        }[t]())
    return mods


class Residual(torch.nn.Module):
    """x + f(x); f's tensors are `block.{j}.*` (nabla's `layers.{i}.block.{j}.*`)."""

    def __init__(self, layers):
        super().__init__()
        self.block = torch.nn.Sequential(*build(layers))

    def forward(self, x):
        return x + self.block(x)


class Net(torch.nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.layers = torch.nn.Sequential(*build(spec["layers"]))

    def forward(self, x):
        return self.layers(x)


net = Net(spec)
result = net.load_state_dict(load_file(model_path), strict=True)
print(f"load_state_dict(strict=True): {result}")
net.eval()
with open(data_path) as f:
    rows = list(csv.DictReader(f))
x = np.array([[float(r[c["name"]]) for c in pre["columns"]] for r in rows])
x = ((x - np.array(pre["center"])) / np.array(pre["scale"])).astype(np.float32)
with torch.no_grad():
    p = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
with open(preds_path) as f:
    theirs = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
print(f"torch vs nabla predict: max |Δp| = {np.abs(p - theirs).max():.2e} over {len(rows)} rows")
