"""How far one evaluation moves between CPU dispatch paths, beside the smallest defect a reference test must catch.

``tests/mulaw_reference.json`` holds the NLL of every exported run of ``results/runs/`` on the shortest TIMIT test
utterance, computed on an Intel Xeon with AMX by the code before representations existed.  Floating-point results
legitimately differ between CPUs: torch picks its vectorised kernels by the instruction sets it finds
(``ATEN_CPU_CAPABILITY``: AVX-512, AVX2 or the portable ``default``) and oneDNN its convolution and matmul kernels
(``ONEDNN_MAX_CPU_ISA``), and each sums in its own order.  This script measures whether a tolerance could separate
that spread from a real defect:

- **spread**: each run evaluated (``wavelab.evaluate.evaluate``, seed 0, one thread) in a fresh process per dispatch
  path: this machine's native one, AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``) and the portable one
  of a CPU without AVX2 (``ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41``), beside the stored reference of
  the other machine;
- **defect**: the same evaluation with every code one step up (``min(code + 1, 2**bits - 1)``): the smallest change
  of the data path a refactor test exists to catch (a code or bin edge off by one).

Measured on the AMD EPYC (AVX512-BF16; ``benchmarks/results/dispatch_spread-amd-avx512bf16.json``): the spread is one
float32 step of the summed NLL (1.1e-7 relative) on two runs, and the one-code defect moves some runs by no more
(1.1e-7 for the LSTM and the 16-bit SaShiMi, 0 for WaveFlow, whose dequantised density hardly sees a one-code shift
of 65,536).  No tolerance separates the two, so ``tests/test_representations.py`` compares nothing stored: it runs
the code before representations (from git) and the current code on the same machine and asks for equality.

Writes ``benchmarks/results/dispatch_spread-<cpu>.json`` (one file per CPU kind, named by its vendor and widest
extension), with each run's NLL per path, the largest relative spread and the defect's relative change.

    .venv/bin/python benchmarks/dispatch_spread.py        # about five minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from wavelab.runs import atomic_write_json, cpu_kind, git_commit, hardware_info

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "mulaw_reference.json"
PATHS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}

CHILD = r"""
import json, sys, torch
torch.set_num_threads(1)
from wavelab.data import load_split
from wavelab.evaluate import evaluate
from wavelab.train import load_run

class OneCodeUp:
    '''The utterance with every code one step up: the defect the reference test must catch.'''
    def __init__(self, utt):
        self.utt, self.id, self.num_samples = utt, utt.id, utt.num_samples
    def codes(self, bits=16, representation="mulaw"):
        return (self.utt.codes(bits, representation) + 1).clamp(max=2 ** bits - 1)

ref = json.loads(open(sys.argv[1]).read())
test = {u.id: u for u in load_split("timit", "test")}
out = {"capability": torch.backends.cpu.get_cpu_capability(), "runs": {}}
for run, r in sorted(ref["runs"].items()):
    model, _, _ = load_run(sys.argv[2] + "/" + run, device="cpu")
    utt = test[r["id"]]
    out["runs"][run] = {"nll": float(evaluate(model, [utt], seed=0).nll[0]),
                        "nll_one_code_up": float(evaluate(model, [OneCodeUp(utt)], seed=0).nll[0])}
print(json.dumps(out))
"""


def measure(env_extra: dict[str, str]) -> dict:
    """One fresh process (torch reads the dispatch variables when it starts) evaluating every reference run."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", CHILD, str(REFERENCE), str(REPO / "results" / "runs")], env=env,
                       capture_output=True, text=True, check=True, timeout=3600, cwd=REPO)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="default: benchmarks/results/dispatch_spread-<cpu kind>.json")
    args = p.parse_args(argv)
    ref = json.loads(REFERENCE.read_text())
    t0 = time.time()
    paths = {name: measure(env) for name, env in PATHS.items()}
    runs = {}
    for run, r in sorted(ref["runs"].items()):
        nll = {name: m["runs"][run]["nll"] for name, m in paths.items()}
        here = list(nll.values())
        spread = (max(here + [r["nll"]]) - min(here + [r["nll"]])) / abs(r["nll"])
        defect = abs(paths["native"]["runs"][run]["nll_one_code_up"] - nll["native"]) / abs(nll["native"])
        runs[run] = {"reference_nll": r["nll"], "nll": nll, "relative_spread": spread,
                     "one_code_up_nll": paths["native"]["runs"][run]["nll_one_code_up"],
                     "one_code_up_relative_change": defect}
    out = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "hardware": hardware_info(),
           "cpu_kind": cpu_kind(), "commit": git_commit(), "wall_s": round(time.time() - t0, 1),
           "reference": {"file": str(REFERENCE.relative_to(REPO)), "commit": ref["commit"],
                         "machine": "Intel Xeon with AMX (the machine that wrote the reference)"},
           "paths": {name: {"env": PATHS[name], "capability": m["capability"]} for name, m in paths.items()},
           "runs": runs,
           "max_relative_spread": max(r["relative_spread"] for r in runs.values()),
           "min_one_code_up_relative_change": min(r["one_code_up_relative_change"] for r in runs.values())}
    dest = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"dispatch_spread-{out['cpu_kind']}.json"
    atomic_write_json(out, dest)
    print(f"wrote {dest}: largest relative spread {out['max_relative_spread']:.3g}, smallest one-code defect "
          f"{out['min_one_code_up_relative_change']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
