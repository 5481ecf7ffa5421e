#!/usr/bin/env python3
"""Weak-scaling model of nabla's distributed step (chain reduce + ring broadcast, both
pipelined in chunks), from figures measured on this machine. Plain Python, no packages.

Per step, every rank computes its fixed per-rank batch (time t_c), then the gradient sum
travels the chain 0 -> N-1 and comes back along the ring. With S gradient bytes, chunk C,
per-message latency a and link bandwidth b, each pipelined phase takes
    (S/C + N - 2) * (a + C/b)        (the first chunk crosses N-1 links, the rest follow)
so  t_comm = 2 * (S/C + N - 2) * (a + C/b).
A ring all-reduce (NCCL, Horovod) would take 2*(N-1)/N * S/b + 2*(N-1)*a.
Every rank then applies the optimizer step to the whole model (t_u, not divided by N).
Efficiency (time per step at 1 rank / at N ranks, same per-rank batch):
    no overlap:   (t_c + t_u) / (t_c + t_u + t_comm)
    with overlap: (t_c + t_u) / (max(t_c, t_comm) + t_u)   (communication hidden behind backward)

Usage: bench/scaling_model.py [--check T_C T_U A B S N MEASURED_STEP]  (seconds, bytes, B/s)
"""
import sys

CHUNK = 4 * (1 << 18)  # bytes: nabla::dist::CHUNK values of f32


def t_comm(s, n, a, b, c=CHUNK):
    if n == 1:
        return 0.0
    chunks = max(1, -(-s // c))
    per = a + min(c, s) / b
    return 2 * (chunks + n - 2) * per


def ring_allreduce(s, n, a, b):
    return 2 * (n - 1) / n * s / b + 2 * (n - 1) * a if n > 1 else 0.0


def efficiency(t_c, t_u, comm, overlap):
    step = (max(t_c, comm) if overlap else t_c + comm) + t_u
    return (t_c + t_u) / step


def table(nets, links):
    print("| network (per-rank batch) | link | ranks | t_comm ms | ring all-reduce ms | efficiency | with overlap |")
    print("|---|---|---|---|---|---|---|")
    for name, s, t_c, t_u in nets:
        for link, a, b in links:
            for n in (8, 64):
                comm = t_comm(s, n, a, b)
                ring = ring_allreduce(s, n, a, b)
                print(
                    f"| {name} | {link} | {n} | {comm*1e3:.1f} | {ring*1e3:.1f} | "
                    f"{efficiency(t_c, t_u, comm, False):.0%} | {efficiency(t_c, t_u, comm, True):.0%} |"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        t_c, t_u, a, b, s, n, measured = map(float, sys.argv[2:9])
        predicted = t_c + t_u + t_comm(int(s), int(n), a, b)
        print(f"predicted step {predicted*1e3:.2f} ms, measured {measured*1e3:.2f} ms, "
              f"ratio {measured/predicted:.2f}")
        sys.exit(0)
    # Measured on this machine (BENCHMARKS.md, "Distributed training"): per-rank compute and
    # update times per step of one rank with one thread; latency a per message for networks.
    NETS = [
        # name, gradient bytes, t_c (s), t_u (s): one rank, one thread, a per-rank batch of
        # 128 rows (2 micro-batches). 784-1024-1024-10: 26 ms per step measured (1 rank x 1
        # thread, 200 steps), of which ~3 ms the SGD update of 1.86M weights; the 784-256-128-10
        # figures are that step scaled by FLOPs; the CNN's from issue 12's epoch under load.
        ("784-256-128-10 (128 rows)", 235_146 * 4, 0.0029, 0.0004),
        ("784-1024-1024-10 (128 rows)", 1_863_690 * 4, 0.023, 0.003),
        ("CNN of issue 12 (128 rows)", 421_642 * 4, 0.40, 0.0008),
    ]
    LINKS = [
        ("10 Gbit/s, 25 µs", 25e-6, 10e9 / 8),
        ("25 Gbit/s, 10 µs", 10e-6, 25e9 / 8),
        ("100 Gbit/s, 3 µs", 3e-6, 100e9 / 8),
    ]
    table(NETS, LINKS)
