"""The embedded store across processes: a second process, a killed writer, a full disk.

Each test runs `mokg` (or a short Python writer) in subprocesses against a real store in
tmp_path, as a user would meet these situations.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def mokg(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mokg", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def python(code: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


HOLD = """
    from graph.store import StoreConfig, open_store
    store = open_store(StoreConfig(path="graph"), create=True)
    print("open", flush=True)
    input()
    store.close()
"""


@pytest.mark.slow
def test_a_second_process_gets_one_line_or_queues_with_wait(tmp_path: Path) -> None:
    holder = python(HOLD, tmp_path)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "open"
        for args in (["stats"], ["runs", "list"]):
            r = mokg("--path", "graph", *args, cwd=tmp_path)
            line = one_line(r.stderr)
            assert r.returncode == 2 and "in use by another process (pid" in line and "--wait" in line
        writer = subprocess.Popen(
            [sys.executable, "-m", "mokg", "--path", "graph", "--wait", "120", "stats", "--json"],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = subprocess.Popen(
            [sys.executable, "-m", "mokg", "--path", "graph", "runs", "list", "-f", "json"],
            cwd=tmp_path,
            env=_env(MOKG_WAIT="120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4)  # both have started and found the store held
        assert writer.poll() is None and reader.poll() is None, "--wait / MOKG_WAIT must queue"
        holder.stdin.write("\n")
        holder.stdin.flush()
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert json.loads(out)["total_nodes"] == 0
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
    finally:
        holder.kill()
        holder.wait()


KILLED = """
    import os, signal
    from graph.store import StoreConfig, open_store
    store = open_store(StoreConfig(path="graph"), create=True)
    run_id = store.start_run("load", "killed mid-way")
    store.upsert_nodes("User", [{"id": "u1", "name": "Ann"}], run_id=run_id)
    print(run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_killed_run_is_listed_as_interrupted_and_the_next_writer_says_so(tmp_path: Path) -> None:
    killed = python(KILLED, tmp_path)
    out, _ = killed.communicate(timeout=120)
    run_id = out.strip()
    assert killed.returncode == -signal.SIGKILL and run_id
    runs = json.loads(mokg("--path", "graph", "runs", "list", "-f", "json", cwd=tmp_path).stdout)
    assert {r["id"]: r["status"] for r in runs}[run_id] == "interrupted"
    (tmp_path / "r.csv").write_text("user,item,rating,ts\n1,10,4,881250949\n")
    r = mokg("--path", "graph", "load", "movielens", "r.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    line = one_line(r.stderr)
    assert line.startswith("warning:") and run_id in line and "mokg runs delete" in line


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.slow
def test_a_full_disk_says_truthfully_that_nothing_was_kept(tmp_path: Path) -> None:
    """LadybugDB says a transaction whose checkpoint failed is "committed and durable"; its COPY is
    gone when the store is reopened. mokg checks, and says what was kept."""
    assert mokg("--path", "graph", "init", cwd=tmp_path).returncode == 0
    size = max(p.stat().st_size for p in (tmp_path / "graph").iterdir())
    rows = "".join(f"{'u' * 200}{i},item{i % 7},4,881250949\n" for i in range(20_000))
    (tmp_path / "big.csv").write_text("user,item,rating,ts\n" + rows)
    r = subprocess.run(
        [sys.executable, "-m", "mokg", "--path", "graph", "load", "movielens", "big.csv"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _limit_file_size(size + 1_000_000),
    )
    line = one_line(r.stderr)
    assert r.returncode == 2 and "durable" not in line and "nothing of it was kept" in line, line
    stats = json.loads(mokg("--path", "graph", "stats", "--json", cwd=tmp_path).stdout)
    assert stats["total_nodes"] == 0 and stats["total_edges"] == 0
    runs = json.loads(mokg("--path", "graph", "runs", "list", "-f", "json", cwd=tmp_path).stdout)
    assert [r["status"] for r in runs] == ["failed"]
