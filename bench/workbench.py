"""Workbench latency benchmark (run: `python -m bench.workbench --help`).

Serves a store with `mokg serve` (a process of its own, as people run it) and sends each
endpoint's requests from ``--clients`` concurrent clients (threads, one ``httpx.Client`` each):
the 1-hop neighbourhood of random User, Item, Intent and Category nodes, searches for random 3–8
character pieces of node names, and — when the app has ``/api/audiences/preview`` — audience
previews of the store's campaigns. Each endpoint is loaded on its own after a warm-up; the
table gives p50/p95/max latency and throughput. Goal (issue 22): p95 < 200 ms for a 1-hop
neighbourhood under 16 clients.

The embedded store admits one process, so the store is copied to a temporary folder first
(``--in-place`` serves it where it is). Inputs are drawn with ``--seed``. Results go to
``--json`` (default ``bench/out/workbench.json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from graph.files import write_text
from graph.store import StoreConfig, open_store

ROOT = Path(__file__).resolve().parents[1]
SEED_LABELS = ("User", "Item", "Intent", "Category")
GOAL_P95_MS = 200.0
Request = Callable[[httpx.Client], httpx.Response]


def draw_inputs(store_path: Path, n: int, seed: int) -> tuple[list[dict[str, str]], list[str]]:
    """``n`` neighbourhood seeds (label, id) and ``n`` search texts, drawn from the store."""
    rng = np.random.default_rng(seed)
    nodes: list[dict[str, str]] = []
    with open_store(StoreConfig(path=store_path)) as store:
        for label in SEED_LABELS:
            df = store.node_table(label, ["name"])
            nodes += [
                {"label": label, "id": str(i), "name": str(x)}
                for i, x in zip(df["id"], df["name"], strict=True)
            ]
    if not nodes:
        raise SystemExit(f"{store_path}: no {', '.join(SEED_LABELS)} nodes to start from")
    picks = [nodes[i] for i in rng.integers(0, len(nodes), n)]
    texts = []
    for node in (nodes[i] for i in rng.integers(0, len(nodes), n)):
        name = node["name"] if len(node["name"]) >= 3 else node["id"]
        width = int(rng.integers(3, min(8, len(name)) + 1))
        start = int(rng.integers(0, len(name) - width + 1))
        texts.append(name[start : start + width])
    return [{"label": p["label"], "id": p["id"]} for p in picks], texts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def served(store_path: Path, scratch: Path) -> Iterator[str]:
    """`mokg serve` on the store, in its own process; yields the base URL."""
    port = _free_port()
    args = ["--path", str(store_path), "serve", "--port", str(port)]
    args += ["--feedback", str(scratch / "feedback.jsonl"), "--exports", str(scratch / "exports")]
    args += ["--audit-log", str(scratch / "audit.jsonl")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mokg", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "workbench at" not in line:
            raise SystemExit(f"`mokg serve` did not start: {line or 'no output'} (exit {proc.poll()})")
        print(line.strip())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def load(url: str, requests: list[Request], clients: int) -> tuple[list[float], int]:
    """Send ``requests`` from ``clients`` threads; (latencies in ms, requests that failed)."""
    todo: queue.Queue[Request] = queue.Queue()
    for r in requests:
        todo.put(r)
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                try:
                    send = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.perf_counter()
                ok = send(http).status_code == 200
                took = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(took)
                    failed[0] += not ok

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failed[0]


def _get(path: str, params: dict[str, Any]) -> Request:
    return functools.partial(httpx.Client.get, url=path, params=params)


def _post(path: str, body: dict[str, Any]) -> Request:
    return functools.partial(httpx.Client.post, url=path, json=body)


def endpoint_requests(
    url: str, seeds: list[dict[str, str]], texts: list[str], args: argparse.Namespace
) -> dict[str, list[Request]]:
    """Each benchmarked endpoint's requests (the audience preview only if the app has it)."""
    work = {
        "neighbourhood (1 hop)": [_get("/api/neighbourhood", {**s, "hops": 1}) for s in seeds],
        "search": [_get("/api/search", {"q": t}) for t in texts],
    }
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    if "/api/audiences/preview" not in paths or "/api/campaigns" not in paths:
        return work
    campaigns = [c["id"] for c in httpx.get(f"{url}/api/campaigns", timeout=120).json()["campaigns"]]
    rng = np.random.default_rng(args.seed)
    picks = rng.integers(0, len(campaigns), args.preview_requests) if campaigns else []
    bodies = [{"campaign": campaigns[int(i)], "method": args.preview_method, "size": 100} for i in picks]
    if bodies:
        work[f"audience preview ({args.preview_method})"] = [
            _post("/api/audiences/preview", b) for b in bodies
        ]
    return work


def measure(url: str, work: dict[str, list[Request]], clients: int) -> dict[str, dict[str, Any]]:
    results = {}
    for name, requests in work.items():
        load(url, requests[: max(clients, len(requests) // 10)], clients)  # warm-up
        start = time.perf_counter()
        latencies, failed = load(url, requests, clients)
        wall = time.perf_counter() - start
        ms = np.asarray(latencies)
        results[name] = {
            "requests": len(ms),
            "failed": failed,
            "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max()),
            "throughput_rps": len(ms) / wall,
        }
    return results


def report(results: dict[str, dict[str, Any]], clients: int) -> None:
    head = ("requests", "failed", "p50 ms", "p95 ms", "max ms")
    print(f"\n{'endpoint':28} " + " ".join(f"{h:>8}" for h in head) + f" {'req/s':>7}")
    for name, r in results.items():
        print(
            f"{name:28} {r['requests']:8d} {r['failed']:8d} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} "
            f"{r['max_ms']:8.1f} {r['throughput_rps']:7.1f}"
        )
    p95 = results["neighbourhood (1 hop)"]["p95_ms"]
    verdict = "met" if p95 < GOAL_P95_MS else "NOT met"
    goal = f"p95 < {GOAL_P95_MS:.0f} ms for a 1-hop neighbourhood under {clients} clients"
    print(f"\ngoal {goal}: {verdict} ({p95:.1f} ms)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.workbench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--store", type=Path, default=Path("mokg-data/graph"), help="embedded store to serve")
    ap.add_argument("--in-place", action="store_true", help="serve the store where it is (no copy)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=480, help="requests per endpoint")
    ap.add_argument("--preview-requests", type=int, default=64)
    ap.add_argument("--preview-method", default="ppr")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path("bench/out/workbench.json"))
    args = ap.parse_args(argv)
    if not (args.store / "mokg.json").exists():
        ap.error(f"{args.store} is not an embedded store (run `make demo`, or give --store PATH)")

    with tempfile.TemporaryDirectory(prefix="mokg-bench-workbench-") as tmp:
        scratch = Path(tmp)
        store = args.store if args.in_place else Path(shutil.copytree(args.store, scratch / "graph"))
        seeds, texts = draw_inputs(store, args.requests, args.seed)
        with served(store, scratch) as url:
            results = measure(url, endpoint_requests(url, seeds, texts, args), args.clients)
    report(results, args.clients)
    out = {
        "store": str(args.store),
        "clients": args.clients,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "command": "python -m bench.workbench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "goal_p95_ms": GOAL_P95_MS,
        "endpoints": results,
    }
    write_text(args.json, json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
