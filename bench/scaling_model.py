#!/usr/bin/env python3
"""Weak-scaling model of nabla's distributed step, from figures measured on this machine.
Plain Python, no packages.

Per step, every rank computes its fixed per-rank batch (time t_c), then the gradient is summed
in the one-process order by one of two schemes (nabla::dist). With S gradient bytes, chunk
C = 1 MiB, per-message latency a and link bandwidth b:

* the chain (reduce 0 -> N-1, broadcast back along the ring), each phase pipelined:
      t_chain = 2 * (S/C + N - 2) * (a + C/b)
* the direct reduce-scatter + all-gather (nabla::dist::Reducer): N-1 pairwise rounds per
  phase, in each a rank sends c messages of S/N bytes in the scatter (c = 1 for rank 0, its
  term count for the others) and one in the gather, in pieces of C:
      t_direct = (N - 1) * (c + 1) * (ceil(S/(N*C)) * a + S/(N*b))
  (c = 1: a ring all-reduce's 2*(N-1)/N * S/b, with 2*(N-1) latencies per piece).
The trainer takes the direct scheme when nabla::dist::direct_pays says it is no slower.
A ring all-reduce (NCCL, Horovod) would take 2*(N-1)/N * S/b + 2*(N-1)*a.
Every rank then applies the optimizer step to the whole model (t_u, not divided by N).
Efficiency (time per step at 1 rank / at N ranks, same per-rank batch):
    no overlap:   (t_c + t_u) / (t_c + t_u + t_comm)
    with overlap: (t_c + t_u) / (t_c + t_u + max(f * t_comm, t_comm - 2/3 * t_c))
where overlap (nabla::train's overlapped sum, --mpi-overlap on) starts each parameter's sum
when its backward is done: backward is about 2/3 of t_c, and the first layer's share f of the
bytes is final only at its end. On one machine's shared memory the transfer is CPU work on the
same cores, so overlap hides only the waiting in it.

Ranks on one machine take the sharded step over shared memory instead (no messages): each
rank writes its term for the others' chunks ((N-1)/N * S), sums and updates its own 1/N of
the weights reading N terms (t_u/N * (N+4)/5: the update pass reads the parameter, its state
and one term and writes two, 5 streams, and each further term adds one), publishes its
updated chunks (S/N) and copies the others' ((N-1)/N * S), with two barriers and the per-step
loss exchange (t_sync). With b_m the copy bandwidth, N ranks on P cores:
      t_shared = max(1, N/P) * (t_c + t_u/N * (N+4)/5 + (2N-1)/N * S/b_m + t_sync)

Usage: bench/scaling_model.py [--check T_C T_U A B S N MEASURED_STEP [TERMS]]
       (seconds, bytes, B/s; TERMS per rank, default 1: the scheme the trainer picks)
       bench/scaling_model.py --check-shared T_C T_U S N CORES B_COPY T_SYNC MEASURED_STEP
"""
import sys

CHUNK = 4 * (1 << 18)  # bytes: nabla::dist::CHUNK values of f32


def t_comm(s, n, a, b, c=CHUNK):
    if n == 1:
        return 0.0
    chunks = max(1, -(-s // c))
    per = a + min(c, s) / b
    return 2 * (chunks + n - 2) * per


def t_direct(s, n, a, b, terms=1, c=CHUNK):
    if n == 1:
        return 0.0
    pieces = max(1, -(-s // (n * c)))
    return (n - 1) * (max(terms, 1) + 1) * (pieces * a + s / (n * b))


def direct_pays(s, n, terms):
    """nabla::dist::direct_pays in bytes (rank 0 sends one prefix; the others their terms)."""
    if n == 1:
        return False
    chain = 2 * n * (s + (n - 2) * min(CHUNK, s))
    return (max(terms, 1) + 1) * (n - 1) * s <= chain


def t_trainer(s, n, a, b, terms=1):
    """The scheme the trainer picks for a gradient of s bytes, terms per rank."""
    if direct_pays(s, n, terms):
        return t_direct(s, n, a, b, terms), "direct"
    return t_comm(s, n, a, b), "chain"


def ring_allreduce(s, n, a, b):
    return 2 * (n - 1) / n * s / b + 2 * (n - 1) * a if n > 1 else 0.0


def t_shared(t_c, t_u, s, n, cores, b_copy, t_sync):
    """A step of the sharded step over shared memory, n ranks on `cores` cores."""
    per_rank = t_c + t_u / n * (n + 4) / 5 + (2 * n - 1) / n * s / b_copy + t_sync
    return max(1.0, n / cores) * per_rank


def efficiency(t_c, t_u, comm, overlap, first=1.0):
    exposed = max(first * comm, comm - 2 / 3 * t_c) if overlap else comm
    return (t_c + t_u) / (t_c + t_u + exposed)


def table(nets, links):
    print("| network (per-rank batch) | link | ranks | chain ms | direct ms (terms) | scheme | "
          "ring all-reduce ms | efficiency | with overlap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s, t_c, t_u, terms, first in nets:
        for link, a, b in links:
            for n in (8, 64):
                chain = t_comm(s, n, a, b)
                direct = t_direct(s, n, a, b, terms)
                comm, scheme = t_trainer(s, n, a, b, terms)
                ring = ring_allreduce(s, n, a, b)
                print(
                    f"| {name} | {link} | {n} | {chain*1e3:.1f} | {direct*1e3:.1f} ({terms}) | "
                    f"{scheme} | {ring*1e3:.1f} | {efficiency(t_c, t_u, comm, False):.0%} | "
                    f"{efficiency(t_c, t_u, comm, True, first):.0%} |"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        t_c, t_u, a, b, s, n, measured = map(float, sys.argv[2:9])
        terms = int(sys.argv[9]) if len(sys.argv) > 9 else 1
        comm, scheme = t_trainer(int(s), int(n), a, b, terms)
        predicted = t_c + t_u + comm
        print(f"{scheme}: sum {comm*1e3:.2f} ms (chain {t_comm(int(s), int(n), a, b)*1e3:.2f}), "
              f"predicted step {predicted*1e3:.2f} ms, measured {measured*1e3:.2f} ms, "
              f"ratio {measured/predicted:.2f}")
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--check-shared":
        t_c, t_u, s, n, cores, b_copy, t_sync, measured = map(float, sys.argv[2:10])
        predicted = t_shared(t_c, t_u, s, int(n), int(cores), b_copy, t_sync)
        print(f"sharded step, {int(n)} ranks on {int(cores)} cores: predicted "
              f"{predicted*1e3:.2f} ms, measured {measured*1e3:.2f} ms, "
              f"ratio {measured/predicted:.2f}")
        sys.exit(0)
    # Measured on this machine (BENCHMARKS.md, "Distributed training"): per-rank compute and
    # update times per step of one rank with one thread; latency a per message for networks.
    NETS = [
        # name, gradient bytes, t_c (s), t_u (s): one rank, one thread, a per-rank batch of
        # 128 rows (2 micro-batches). 784-1024-1024-10: 26 ms per step measured (1 rank x 1
        # thread, 200 steps), of which ~3 ms the SGD update of 1.86M weights; the 784-256-128-10
        # figures are that step scaled by FLOPs; the CNN's from issue 12's epoch under load.
        # The last two: terms per rank (2 micro-batches of 64 rows), and the share of the
        # gradient bytes in the first layer (final only at the end of backward).
        ("784-256-128-10 (128 rows)", 235_146 * 4, 0.0029, 0.0004, 2, 0.85),
        ("784-1024-1024-10 (128 rows)", 1_863_690 * 4, 0.023, 0.003, 2, 0.43),
        ("784-1024-1024-10 (64 rows)", 1_863_690 * 4, 0.0115, 0.003, 1, 0.43),
        ("CNN of issue 12 (128 rows)", 421_642 * 4, 0.40, 0.0008, 2, 0.001),
    ]
    LINKS = [
        ("10 Gbit/s, 25 µs", 25e-6, 10e9 / 8),
        ("25 Gbit/s, 10 µs", 10e-6, 25e9 / 8),
        ("100 Gbit/s, 3 µs", 3e-6, 100e9 / 8),
    ]
    table(NETS, LINKS)
