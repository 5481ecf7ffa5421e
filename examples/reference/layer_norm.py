"""NumPy reference for examples/layer_norm.rs: a layer norm over the last axis,
y = (x − mean) / √(var + eps) · γ + β (population variance, eps = 1e-5, as PyTorch's
nn.LayerNorm), applied after a linear map: y = LN(x·W), on random float32 values computed in
float64. Writes layer_norm.json (beside this file), which the example reads and must match
to 1e-5:

    python3 -m venv /tmp/npvenv && /tmp/npvenv/bin/pip install numpy
    /tmp/npvenv/bin/python examples/reference/layer_norm.py > examples/reference/layer_norm.json

(layer_norm.json was made this way with NumPy 2.4.6; seeded, so the same NumPy remakes it.)
"""

import json

import numpy as np

BATCH, TIME, INPUT, MODEL, EPS = 2, 3, 6, 8, 1e-5
rng = np.random.default_rng(2026)


def f32(shape, scale, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def tensor(a):
    return {"shape": list(a.shape), "data": [float(v) for v in np.asarray(a).ravel()]}


x = f32((BATCH, TIME, INPUT), 1.0)
w = f32((INPUT, MODEL), INPUT**-0.5)
gamma = f32((MODEL,), 0.1, 1.0)
beta = f32((MODEL,), 0.1)
h = x.astype(np.float64) @ w.astype(np.float64)
mean = h.mean(axis=-1, keepdims=True)
var = ((h - mean) ** 2).mean(axis=-1, keepdims=True)
y = (h - mean) / np.sqrt(var + EPS) * gamma.astype(np.float64) + beta.astype(np.float64)
print(
    json.dumps(
        {
            "eps": EPS,
            "x": tensor(x),
            "weights": {"w": tensor(w), "gamma": tensor(gamma), "beta": tensor(beta)},
            "output": tensor(y),
        }
    )
)
