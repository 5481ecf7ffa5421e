"""Makes tests/reference/views.json: NumPy's answers for nabla's views, broadcasting binary
ops and batched matmul on random shapes (rank 1-5, sizes 1-4), read by tests/tensor_views.rs.

    python3 -m venv /tmp/npvenv && /tmp/npvenv/bin/pip install numpy
    /tmp/npvenv/bin/python tests/reference/make_views.py > tests/reference/views.json

Inputs are float32 (as nabla's); outputs are computed by NumPy in float64 from them. Axes are
written as nabla takes them (negative from the end where the case says so). Seeded: the same
NumPy gives the same file (views.json was made with NumPy 2.4.6).
"""

import json

import numpy as np

rng = np.random.default_rng(25)


def shape(rank=None):
    rank = rank if rank is not None else int(rng.integers(1, 6))
    return [int(s) for s in rng.integers(1, 5, size=rank)]


def values(s):
    return rng.uniform(-1, 1, size=s).astype(np.float32)


def case(op, args, inputs, out):
    out = np.asarray(out, dtype=np.float64)
    return {
        "op": op,
        "args": args,
        "inputs": [{"shape": list(x.shape), "data": [float(v) for v in x.ravel()]} for x in inputs],
        "output": {"shape": list(out.shape), "data": [float(v) for v in out.ravel()]},
    }


def view_cases():
    cases = []
    for _ in range(6):
        s = shape()
        x = values(s)
        order = [int(a) for a in rng.permutation(len(s))]
        cases.append(case("permute", {"order": order}, [x], np.transpose(x, order)))
        a, b = int(rng.integers(-len(s), len(s))), int(rng.integers(-len(s), len(s)))
        cases.append(case("transpose", {"a": a, "b": b}, [x], np.swapaxes(x, a, b)))
        axis = int(rng.integers(-len(s), len(s)))
        size = s[axis]
        start = int(rng.integers(0, size))
        length = int(rng.integers(1, size - start + 1))
        sl = [slice(None)] * len(s)
        sl[axis] = slice(start, start + length)
        cases.append(
            case("narrow", {"axis": axis, "start": start, "len": length}, [x], x[tuple(sl)])
        )
        if len(s) < 5:
            axis = int(rng.integers(-len(s) - 1, len(s) + 1))
            cases.append(case("unsqueeze", {"axis": axis}, [x], np.expand_dims(x, axis)))
        ones = [i for i, d in enumerate(s) if d == 1]
        if ones:
            axis = ones[int(rng.integers(0, len(ones)))] - len(s)
            cases.append(case("squeeze", {"axis": axis}, [x], np.squeeze(x, axis)))
        to = [d if d != 1 else int(rng.integers(1, 4)) for d in s]
        to = shape(int(rng.integers(0, 6 - len(s)))) + to
        cases.append(case("broadcast_to", {"shape": to}, [x], np.broadcast_to(x, to)))
        flat = int(np.prod(s))
        divisors = [d for d in range(1, flat + 1) if flat % d == 0]
        first = divisors[int(rng.integers(0, len(divisors)))]
        cases.append(case("reshape", {"shape": [first, -1]}, [x], x.reshape(first, -1)))
        cases.append(case("contiguous_transpose", {}, [x], np.ascontiguousarray(x.T)))
    return cases


def broadcast_pair():
    out = shape()
    a = [d if rng.random() < 0.6 else 1 for d in out][int(rng.integers(0, len(out))):]
    b = [d if rng.random() < 0.6 else 1 for d in out][int(rng.integers(0, len(out))):]
    return a, b


def binary_cases():
    cases = []
    ops = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "maximum": np.maximum,
        "minimum": np.minimum,
    }
    for name, f in ops.items():
        for _ in range(3):
            sa, sb = broadcast_pair()
            a, b = values(sa), values(sb)
            if name == "div":
                b = (np.abs(b) + 0.5).astype(np.float32)
            cases.append(case(name, {}, [a, b], f(a.astype(np.float64), b.astype(np.float64))))
    return cases


def matmul_cases():
    cases = []
    for _ in range(10):
        m, k, n = (int(v) for v in rng.integers(1, 5, size=3))
        batch = shape(int(rng.integers(0, 4)))
        sa = [d if rng.random() < 0.7 else 1 for d in batch][int(rng.integers(0, len(batch) + 1)):]
        sb = [d if rng.random() < 0.7 else 1 for d in batch][int(rng.integers(0, len(batch) + 1)):]
        a = values(sa + [m, k]) if rng.random() > 0.15 else values([k])
        b = values(sb + [k, n]) if rng.random() > 0.15 else values([k])
        out = np.matmul(a.astype(np.float64), b.astype(np.float64))
        cases.append(case("matmul", {}, [a, b], out))
    return cases


print(json.dumps({"cases": view_cases() + binary_cases() + matmul_cases()}))
