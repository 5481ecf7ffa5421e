"""Optimizer and loss reference values for nabla's Rust tests, computed with PyTorch.

What it computes
----------------
* Optimizer trajectories. A single float64 parameter vector
      p0 = [0.5, -1.25, 2.0, 0.0, -0.3]
  is stepped 5 times by each optimizer below. The gradient is NOT computed from
  a loss: at step t (t = 1..5) ``p.grad`` is set by hand to
      g_t = [0.1*t, -0.2, 0.3/t, (-1)^t * 0.05, 1.5 - 0.25*t]
  and ``opt.step()`` is called. The parameters after every step are printed.
  Cases (all other hyper-parameters are PyTorch defaults):
      sgd                  SGD lr=0.1
      sgd_momentum         SGD lr=0.1 momentum=0.9
      sgd_nesterov         SGD lr=0.1 momentum=0.9 nesterov=True
      sgd_momentum_wd      SGD lr=0.1 momentum=0.9 weight_decay=0.01
      adam                 Adam lr=0.01 betas=(0.9, 0.999) eps=1e-8
      adam_wd              Adam lr=0.01 weight_decay=0.01   (L2 added to the gradient)
      adamw                AdamW lr=0.01 weight_decay=0.01  (decoupled decay: p *= 1 - lr*wd)
      rmsprop              RMSprop lr=0.01 alpha=0.99 eps=1e-8
      rmsprop_momentum     RMSprop lr=0.01 alpha=0.99 eps=1e-8 momentum=0.9
      adagrad              Adagrad lr=0.1 eps=1e-10 (lr_decay=0, initial_accumulator_value=0)
  Notes on PyTorch semantics that a Rust port must match:
    - SGD momentum: on the first step the buffer is initialised to the gradient
      itself (buf = g), afterwards buf = momentum*buf + (1 - dampening)*g.
      Nesterov uses g + momentum*buf as the update direction.
    - weight_decay in SGD/Adam/RMSprop/Adagrad is added to the gradient (g += wd*p)
      before anything else; AdamW instead multiplies p by (1 - lr*wd) first.
    - Adam: eps is added AFTER the bias-corrected sqrt:
      p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    - RMSprop: eps is added after the sqrt: v = a*v + (1-a)*g^2; p -= lr*g/(sqrt(v)+eps);
      with momentum: buf = mom*buf + g/(sqrt(v)+eps); p -= lr*buf.
    - Adagrad: sum += g^2; p -= lr * g / (sqrt(sum) + eps).

* The same trajectories computed in float32 (lines prefixed ``f32_``): nabla's parameters
  are f32, so these are what it must match to 1e-6 relative; the float64 lines show the
  exact values.

* Loss references (float64), logits L = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]:
    - softmax(L, dim=1) and log_softmax(L, dim=1)
    - F.cross_entropy(L, [1, 2]) with reduction='mean', and d loss / d L
    - F.mse_loss(pred, target) with reduction='mean' for
      pred = [[0.5, 1.5], [2.0, -1.0]], target = [[1.0, 1.0], [0.0, 0.0]], and d loss / d pred

Numbers are printed with Python's repr(float): the shortest decimal that round-trips the
f64 exactly (up to 17 significant digits; same as Rust's `{}` for f64), so a Rust
`"...".parse::<f64>()` gives back the bit-identical value torch produced.

Torch version used to produce optim_reference.txt: 2.15.0 (wheel "2.15.0+cu132",
run on CPU), numpy 2.4.6, Python 3.11.7.

How to run
----------
    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch numpy
    /work/torchvenv/bin/python bench/reference/optim_reference.py > bench/reference/optim_reference.txt
(or use the interpreter printed by bench/setup_venv.sh). Run from the repo root.
"""

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

P0 = [0.5, -1.25, 2.0, 0.0, -0.3]
STEPS = 5


def grad_at(t):
    return [0.1 * t, -0.2, 0.3 / t, (-1) ** t * 0.05, 1.5 - 0.25 * t]


def fmt(x):
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    return repr(float(x))


CASES = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_momentum_wd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    ("adam_wd", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    ("rmsprop_momentum", lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.9)),
    ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10)),
]


def main():
    print("# nabla optimizer/loss reference values, torch %s, float64" % torch.__version__)
    print("# p0=%s" % fmt(P0))
    for t in range(1, STEPS + 1):
        print("# grad step=%d g=%s" % (t, fmt(grad_at(t))))
    for name, make in CASES:
        p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
        opt = make([p])
        for t in range(1, STEPS + 1):
            p.grad = torch.tensor(grad_at(t), dtype=torch.float64)
            opt.step()
            print("%s step=%d params=%s" % (name, t, fmt(p.detach())))
    # The same trajectories in float32, the precision nabla computes in: an f32 implementation
    # can only be compared to 1e-6 relative against an f32 reference (each step rounds p).
    for name, make in CASES:
        p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
        opt = make([p])
        for t in range(1, STEPS + 1):
            p.grad = torch.tensor(grad_at(t), dtype=torch.float32)
            opt.step()
            print("f32_%s step=%d params=%s" % (name, t, fmt(p.detach())))

    logits = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1, 2])
    print("# logits=%s labels=%s" % (fmt(logits.detach()), labels.tolist()))
    print("softmax dim=1 value=%s" % fmt(torch.softmax(logits.detach(), dim=1)))
    print("log_softmax dim=1 value=%s" % fmt(torch.log_softmax(logits.detach(), dim=1)))
    ce = F.cross_entropy(logits, labels, reduction="mean")
    ce.backward()
    print("cross_entropy_mean value=%s" % fmt(ce.item()))
    print("cross_entropy_mean grad=%s" % fmt(logits.grad))

    pred = torch.tensor([[0.5, 1.5], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    print("# mse pred=%s target=%s" % (fmt(pred.detach()), fmt(target)))
    mse = F.mse_loss(pred, target, reduction="mean")
    mse.backward()
    print("mse_mean value=%s" % fmt(mse.item()))
    print("mse_mean grad=%s" % fmt(pred.grad))


if __name__ == "__main__":
    main()
