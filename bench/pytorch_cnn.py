#!/usr/bin/env python3
"""PyTorch reference benchmark for nabla's CNNs: bench/pytorch_mlp.py (same data handling, timing
and JSON output: MNIST held as one tensor, torch.randperm batches, epoch = training steps only,
inference = median of 5 passes over the 10k test images in batches of 1000 under no_grad) with
the network given as nabla's --layers words instead of --hidden, so both run the same layers.

Extra flags: --layers "conv 32 3 pad 1, relu, maxpool 2, ..." (words: conv F K [stride S]
[pad P], relu, maxpool K [stride S], avgpool K, flatten, dense N, dropout P; input 1x28x28) and
--limit-train N (first N training images, as nabla's --limit-train). Other flags: see
pytorch_mlp.py.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_mlp as base  # noqa: E402
import torch.nn as nn  # noqa: E402


def build_cnn(words, shape=(1, 28, 28)):
    """nn.Sequential for nabla's --layers words over a C×H×W input given as flat rows."""
    c, h, w = shape
    layers, flat = [nn.Unflatten(1, (c, h, w))], None
    for item in words.split(","):
        t = item.split()
        opt = {t[i]: int(t[i + 1]) for i in range(2 if t[0] in ("maxpool", "avgpool") else 3, len(t) - 1, 2)}
        if t[0] == "conv":
            f, k = int(t[1]), int(t[2])
            s, p = opt.get("stride", 1), opt.get("pad", 0)
            layers.append(nn.Conv2d(c, f, k, stride=s, padding=p))
            c, h, w = f, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t[0] in ("maxpool", "avgpool"):
            k = int(t[1])
            s = opt.get("stride", k)
            layers.append((nn.MaxPool2d if t[0] == "maxpool" else nn.AvgPool2d)(k, s))
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif t[0] == "relu":
            layers.append(nn.ReLU())
        elif t[0] == "flatten":
            layers.append(nn.Flatten())
            flat = c * h * w
        elif t[0] == "dense":
            layers.append(nn.Linear(flat, int(t[1])))
            flat = int(t[1])
        elif t[0] == "dropout":
            layers.append(nn.Dropout(float(t[1])))
        else:
            sys.exit(f"pytorch_cnn.py: layer word {t[0]!r} not supported here")
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--layers", required=True)
    p.add_argument("--limit-train", type=int, default=None)
    a, rest = p.parse_known_args()
    base.build_model = lambda hidden: build_cnn(a.layers)
    if a.limit_train:
        load = base.load_split

        def limited(folder, prefix):
            x, y = load(folder, prefix)
            return (x[: a.limit_train], y[: a.limit_train]) if prefix == "train" else (x, y)

        base.load_split = limited
    return base.main(rest + ["--hidden", "1"])


if __name__ == "__main__":
    sys.exit(main())
