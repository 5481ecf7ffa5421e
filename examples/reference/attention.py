"""NumPy reference for examples/attention.rs: a causal multi-head self-attention
y = concat_h(softmax(mask(q_h k_hᵀ / √d)) v_h) · Wo with q = x·Wq, k = x·Wk, v = x·Wv, on
random float32 weights and inputs, computed in float64. Writes attention.json (beside this
file), which the example reads and must match to 1e-5:

    python3 -m venv /tmp/npvenv && /tmp/npvenv/bin/pip install numpy
    /tmp/npvenv/bin/python examples/reference/attention.py > examples/reference/attention.json

(attention.json was made this way with NumPy 2.4.6; seeded, so the same NumPy remakes it.)
"""

import json

import numpy as np

BATCH, TIME, MODEL, HEADS = 2, 5, 8, 2
rng = np.random.default_rng(2025)


def f32(shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def attention(x, wq, wk, wv, wo, heads):
    b, t, c = x.shape
    d = c // heads

    def split(z):  # [b, t, c] -> [b, heads, t, d]
        return z.reshape(b, t, heads, d).transpose(0, 2, 1, 3)

    q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    above = np.triu(np.ones((t, t), dtype=bool), k=1)
    scores = np.where(above, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(axis=-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(b, t, c)
    return o @ wo


def tensor(a):
    return {"shape": list(a.shape), "data": [float(v) for v in np.asarray(a).ravel()]}


x = f32((BATCH, TIME, MODEL), 1.0)
w = {name: f32((MODEL, MODEL), MODEL**-0.5) for name in ("wq", "wk", "wv", "wo")}
y = attention(*(a.astype(np.float64) for a in (x, w["wq"], w["wk"], w["wv"], w["wo"])), HEADS)
print(
    json.dumps(
        {
            "heads": HEADS,
            "x": tensor(x),
            "weights": {k: tensor(v) for k, v in w.items()},
            "output": tensor(y),
        }
    )
)
