"""Score `steward score` on the Numenta Anomaly Benchmark with NAB's own scorer.

    python benchmarks/nab.py --nab /work/nab --nab-python /work/nab-venv/bin/python
    python benchmarks/nab.py --nab /work/nab --nab-python ... --categories realKnownCause,realTraffic,realTweets

NAB (https://github.com/numenta/NAB, v1.1) is not part of this repository: give
the path of a checkout and a Python that has NAB's scorer's needs (pandas < 3,
numpy). This script

1. runs ``steward score`` once over the checkout's ``data/`` (one process for
   every file; each file is one stream scored in one pass, no look-ahead) into
   ``<work>/results/steward/<category>/steward_<file>.csv``;
2. copies NAB's own ``null`` detector results beside them (the normalisation's
   zero) and NAB's ``config/thresholds.json`` into ``<work>`` (the optimiser
   rewrites it);
3. runs NAB's ``run.py --optimize --score --normalize`` for ``null,steward``:
   NAB picks one threshold per profile for the whole corpus, scores every file
   with it and normalises (null = 0, perfect = 100);
4. prints the three figures (standard, reward_low_FP_rate, reward_low_FN_rate)
   and the time each stage took.

``--categories`` restricts the run to some of NAB's folders (the labels are
filtered the same way), for a held-out view. Nothing here reads NAB's labels
before or while scoring: `steward score` only ever sees ``timestamp,value``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nab", type=Path, required=True, help="a checkout of github.com/numenta/NAB")
    ap.add_argument("--nab-python", default=sys.executable, help="a Python with pandas < 3 and numpy for NAB's scorer")
    ap.add_argument("--steward", default=str(Path(sys.executable).with_name("steward")), help="the steward command")
    ap.add_argument("--work", type=Path, help="results folder (default: a new temporary folder)")
    ap.add_argument("--categories", help="comma-separated NAB data folders to score (default: all)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--causal", action="store_true",
                    help="also score the first 60 %% of every file alone and check its scores are the full run's")
    args = ap.parse_args()

    nab = args.nab.resolve()
    if not (nab / "run.py").is_file() or not (nab / "data").is_dir():
        ap.error(f"--nab: {nab} is not a NAB checkout (no run.py / data/)")
    work = (args.work or Path(tempfile.mkdtemp(prefix="steward-nab-"))).resolve()
    results = work / "results"
    if results.exists():
        shutil.rmtree(results)
    (results / "steward").mkdir(parents=True)
    data, windows = nab / "data", nab / "labels" / "combined_windows.json"
    cats = sorted(d.name for d in data.iterdir() if d.is_dir())
    if args.categories:
        wanted = args.categories.split(",")
        unknown = sorted(set(wanted) - set(cats))
        if unknown:
            ap.error(f"--categories: not NAB folders: {', '.join(unknown)}")
        cats = sorted(wanted)
        data = work / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        for c in cats:
            shutil.copytree(nab / "data" / c, data / c)
        labels = json.loads(windows.read_text())
        windows = work / "windows.json"
        windows.write_text(json.dumps({k: v for k, v in labels.items() if k.split("/")[0] in cats}, indent=1))

    t0 = time.perf_counter()
    cpu0 = os.times()
    subprocess.run([args.steward, "score", str(data), "-o", str(results / "steward"),
                    "--prefix", "steward_"], check=True, stderr=subprocess.DEVNULL)
    cpu1 = os.times()
    score_s = time.perf_counter() - t0
    score_cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    causal = _causal_check(args.steward, data, results / "steward", work) if args.causal else None
    for c in cats:
        shutil.copytree(nab / "results" / "null" / c, results / "null" / c)
    thresholds = work / "thresholds.json"
    shutil.copy(nab / "config" / "thresholds.json", thresholds)

    t1 = time.perf_counter()
    run = subprocess.run(
        [args.nab_python, "run.py", "-d", "null,steward", "--optimize", "--score", "--normalize",
         "--skipConfirmation", "--dataDir", str(data), "--windowsFile", str(windows),
         "--resultsDir", str(results), "-t", str(thresholds), "-n", "1"],
        cwd=nab, capture_output=True, text=True,
    )
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n", file=sys.stderr)
        return 1
    nab_s = time.perf_counter() - t1
    final = json.loads((results / "final_results.json").read_text())["steward"]
    chosen = json.loads(thresholds.read_text())["steward"]
    figures = {
        "categories": cats,
        "files": sum(1 for _ in (results / "steward").glob("*/*.csv")),
        **{p: round(final[p], 2) for p in PROFILES},
        "thresholds": {p: chosen[p]["threshold"] for p in PROFILES},
        "steward_score_seconds": round(score_s, 1),
        "steward_score_cpu_seconds": round(score_cpu, 1),
        "nab_scorer_seconds": round(nab_s, 1),
        "results": str(results),
        "causal_files_checked": causal,
    }
    print(f"NAB ({len(cats)} folders, {figures['files']} files), NAB's own optimise/score/normalise:")
    for p in PROFILES:
        print(f"  {p:<20} {final[p]:6.2f}   (threshold {chosen[p]['threshold']:.6f})")
    print(f"steward score: {score_s:.1f} s wall, {score_cpu:.1f} s CPU; NAB scorer: {nab_s:.1f} s; results in {results}")
    if causal is not None:
        print(f"causal check: the first 60 % of each of {causal} files, scored alone, scores exactly as in the full run")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _causal_check(steward: str, data: Path, scored: Path, work: Path) -> int:
    """Score the first 60 % of every file on its own; its scores must equal the full run's first 60 %."""
    prefix_in, prefix_out = work / "prefix-in", work / "prefix-out"
    for d in (prefix_in, prefix_out):
        shutil.rmtree(d, ignore_errors=True)
    files = sorted(p for p in data.glob("*/*.csv"))
    for f in files:
        lines = f.read_text().splitlines()
        keep = 1 + int((len(lines) - 1) * 0.6)
        (prefix_in / f.parent.name).mkdir(parents=True, exist_ok=True)
        (prefix_in / f.parent.name / f.name).write_text("\n".join(lines[:keep]) + "\n")
    subprocess.run([steward, "score", str(prefix_in), "-o", str(prefix_out), "--prefix", "steward_"], check=True,
                   stderr=subprocess.DEVNULL)
    for f in files:
        part = (prefix_out / f.parent.name / f"steward_{f.name}").read_text().splitlines()
        full = (scored / f.parent.name / f"steward_{f.name}").read_text().splitlines()
        if [r.split(",")[-1] for r in part] != [r.split(",")[-1] for r in full[: len(part)]]:
            raise SystemExit(f"causal check failed: {f.parent.name}/{f.name}: a prefix scores differently")
    return len(files)


if __name__ == "__main__":
    sys.exit(main())
