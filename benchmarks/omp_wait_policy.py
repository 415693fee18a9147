"""How OpenMP's wait policy decides the speed of a 2-thread recurrent loop on a busy 2-core machine.

A recurrent model's importance-weighted bound (SRNN, s = 64, Dz = Dd = 256: the recorded CPU-budget configuration, one
second of random codes, K = 10) runs one small matmul after another; between them OpenMP's worker threads wait.  With
the default policy they spin, and when other processes hold the cores a spinning thread takes the core its partner
needs.  This script times the same call in a fresh process for every combination of wait policy (the default and
``OMP_WAIT_POLICY=PASSIVE``), torch threads (1, 2) and machine state (quiet; or busy: ``--busy`` processes spinning
on the cores plus a neighbour, the same workload looping in another process with 2 threads and the default policy, as
CI's own jobs are), best of ``--repeats``, and writes ``benchmarks/results/omp_wait_policy.json``.  It is why the test
command exports ``OMP_WAIT_POLICY=PASSIVE`` (the book build, usually on a quiet machine, keeps the default).  It
measures; no test reads its numbers.

    .venv/bin/python benchmarks/omp_wait_policy.py            # quiet machine: about two minutes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from wavelab.runs import atomic_write_json, git_commit, hardware_info

NEIGHBOUR = """
import torch
torch.set_num_threads(2)
from wavelab.models import build_model
m = build_model("srnn", s=64, Dz=256, Dd=256).eval()
codes, lengths = torch.randint(0, 65536, (1, 16000)), torch.tensor([16000])
while True:
    with torch.no_grad():
        m.iw_bound(codes, lengths, 10, chunk=10)
"""

CHILD = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from wavelab.models import build_model
torch.manual_seed(0)
m = build_model("srnn", s=64, Dz=256, Dd=256).eval()
codes, lengths = torch.randint(0, 65536, (1, 16000)), torch.tensor([16000])
best = float("inf")
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    with torch.no_grad():
        m.iw_bound(codes, lengths, 10, generator=torch.Generator().manual_seed(0), chunk=10)
    best = min(best, time.perf_counter() - t)
print(best)
"""


def measure(threads: int, policy: str | None, repeats: int) -> float:
    """Seconds of the best of ``repeats`` calls in a fresh Python process (OpenMP reads its settings at start)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(repeats)], env=env, capture_output=True,
                         text=True, check=True, timeout=1800)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--busy", type=int, default=2, help="spinning processes for the busy state (default 2: both cores)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/omp_wait_policy.json")
    args = p.parse_args(argv)
    out = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "hardware": hardware_info(),
           "commit": git_commit(), "load_average_at_start": os.getloadavg(), "busy_processes": args.busy, "neighbour": "same workload, 2 threads",
           "workload": "SRNN s=64 Dz=Dd=256 iw_bound K=10 chunk=10, 16000 random codes, batch 1",
           "repeats": args.repeats, "measurements": []}
    for state in ("quiet", "busy"):
        burners = []
        if state == "busy":
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            burners.append(subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=env))
            time.sleep(5)  # the neighbour has built its model and is looping
        try:
            for policy in (None, "PASSIVE"):
                for threads in (1, 2):
                    s = measure(threads, policy, args.repeats)
                    row = {"state": state, "omp_wait_policy": policy or "default", "threads": threads, "seconds": s}
                    print(row, flush=True)
                    out["measurements"].append(row)
        finally:
            for b in burners:
                b.kill()
                b.wait()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
