"""`mokg build` / `mokg eval mining` as a user runs them: resume after a kill, dead and slow
endpoints, idempotent reruns. Real processes, real HTTP, a real embedded store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graph.store import StoreConfig, open_store
from tests.test_mining_pipeline import _ontology_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "graph"
    _ontology_store(path).close()
    return path


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    return {**env, "MOKG_CACHE": str(cache), "COLUMNS": "200"}


def _build_args(store: Path, work: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mokg",
        "--path",
        str(store),
        "build",
        "--limit",
        "3",
        "--rounds",
        "3",
        "--samples",
        "2",
        "--workdir",
        str(work),
        *extra,
    ]


def _mined(store: Path) -> set[tuple[str, str, str]]:
    with open_store(StoreConfig(backend="embedded", path=store)) as s:
        out = set()
        for key in (
            ("Intent", "NEEDS", "Category"),
            ("Intent", "CO_OCCURS_WITH", "Intent"),
            ("Category", "SERVES", "Intent"),
        ):
            edges = s.edge_table(key)
            out |= {(key[1], h, t) for h, t in zip(edges["head"], edges["tail"], strict=True)}
        return out


def test_a_killed_build_resumes_and_ends_where_an_uninterrupted_one_does(
    base_store: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    shutil.copytree(base_store, killed)
    shutil.copytree(base_store, whole)
    slow = ["--latency", "0.15", "--concurrency", "1"]
    proc = subprocess.Popen(
        _build_args(killed, tmp_path / "w1", *slow),
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    state = tmp_path / "w1" / "checkpoint.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["round_done"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["round_done"] < 3
    resumed = subprocess.run(
        _build_args(killed, tmp_path / "w1"), env=_env(cache), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stdout
    again = subprocess.run(
        _build_args(killed, tmp_path / "w1"), env=_env(cache), capture_output=True, text=True, timeout=300
    )
    assert "nothing to do" in again.stdout
    ref = subprocess.run(
        _build_args(whole, tmp_path / "w2"), env=_env(cache), capture_output=True, text=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr
    assert _mined(killed) == _mined(whole) and _mined(killed)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_endpoint_stops_the_job_with_a_clear_error_and_writes_nothing(
    base_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "g"
    shutil.copytree(base_store, store)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    args = _build_args(
        store, tmp_path / "w", "--llm", "openai", "--base-url", url, "--model", "m", "--retries", "1"
    )
    done = subprocess.run(args, env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "error:" in done.stderr and "127.0.0.1" in done.stderr
    assert not _mined(store)
    s = open_store(StoreConfig(backend="embedded", path=store))
    runs = s.runs()
    s.close()
    assert runs[runs["kind"] == "mine"]["status"].tolist() == ["failed"]


def test_a_slow_endpoint_times_out_and_loses_nothing(base_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "g"
    shutil.copytree(base_store, store)
    args = _build_args(store, tmp_path / "w", "--latency", "3", "--timeout", "0.5", "--retries", "1")
    done = subprocess.run(args, env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "timed out" in done.stderr.lower() or "timeout" in done.stderr.lower()
    assert not _mined(store)


def test_build_help_teaches_and_bad_input_is_refused(base_store: Path, tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "mokg", "build", "--help"], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert "resume" in helped.stdout and "--rounds" in helped.stdout
    store = tmp_path / "g"
    shutil.copytree(base_store, store)
    bad = subprocess.run(
        _build_args(store, tmp_path / "w", "--seeds", str(tmp_path / "missing.jsonl")),
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "seed file" in bad.stderr
    zero = subprocess.run(
        _build_args(store, tmp_path / "w2", "--samples", "0"),
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert zero.returncode == 2 and "samples=0" in zero.stderr


def test_a_teacher_build_replays_offline_into_the_same_triples(base_store: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    live, replayed = tmp_path / "live", tmp_path / "replayed"
    shutil.copytree(base_store, live)
    shutil.copytree(base_store, replayed)
    first = subprocess.run(
        _build_args(live, tmp_path / "w1"), env=_env(cache), capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        _build_args(replayed, tmp_path / "w2", "--llm", "replay", "--cache", str(cache / "llm")),
        env=_env(tmp_path / "other-cache"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert _mined(replayed) == _mined(live) and _mined(live)
    missing = subprocess.run(
        _build_args(
            tmp_path / "nowhere", tmp_path / "w3", "--llm", "replay", "--cache", str(tmp_path / "none")
        ),
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "error:" in missing.stderr
