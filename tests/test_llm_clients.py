"""The LLM layer over real HTTP: a scripted OpenAI-compatible stub on 127.0.0.1 stands in for the
hosted model; retries, cache, concurrency, structured parsing and replay are checked against it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mining.llm import LLM_CLIENTS, LLMError, LLMUnavailable, Request, Usage, make_client
from mining.llm.cache import ResponseCache, cache_key
from mining.llm.cached import CachedClient
from mining.llm.openai_http import OpenAIClient
from mining.llm.replay import ReplayClient, write_jsonl
from mining.llm.structured import ask_structured, repair
from mining.prompts import JudgementAnswer, Message, schema_of
from tests.support.openai_stub import OpenAIStub, Reply

HELLO: list[Message] = [{"role": "user", "content": "hello"}]
JUDGED = '{"valid": true, "confidence": 0.8}'


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub().start()
    yield server
    server.stop()


def client_for(
    stub: OpenAIStub, *, timeout_s: float = 2.0, max_retries: int = 4, concurrency: int = 8
) -> OpenAIClient:
    """A client of the stub with test-sized timeouts and backoff."""
    return OpenAIClient(
        stub.url,
        "stub-model",
        timeout_s=timeout_s,
        max_retries=max_retries,
        backoff_s=0.01,
        concurrency=concurrency,
    )


def test_a_call_returns_the_content_and_counts_tokens(stub: OpenAIStub) -> None:
    stub.script(Reply(content="hi there", prompt_tokens=7, completion_tokens=3))
    client = client_for(stub)
    assert client.complete(HELLO) == ["hi there"]
    assert (client.usage.calls, client.usage.prompt_tokens, client.usage.completion_tokens) == (1, 7, 3)
    assert stub.bodies[0]["model"] == "stub-model"
    assert stub.bodies[0]["messages"] == HELLO
    assert "response_format" not in stub.bodies[0]


def test_a_429_is_retried_after_its_retry_after(stub: OpenAIStub) -> None:
    stub.script(Reply(status=429, headers={"Retry-After": "0.2"}), Reply(content="done"))
    client = client_for(stub)
    started = time.perf_counter()
    assert client.complete(HELLO) == ["done"]
    assert time.perf_counter() - started >= 0.2
    assert (client.usage.retries, client.usage.calls, client.usage.failures) == (1, 1, 0)


def test_a_long_retry_after_is_capped(stub: OpenAIStub) -> None:
    stub.script(Reply(status=429, headers={"Retry-After": "60"}), Reply(content="done"))
    client = OpenAIClient(stub.url, "stub-model", backoff_s=0.01, retry_after_cap_s=0.05)
    started = time.perf_counter()
    assert client.complete(HELLO) == ["done"]
    assert time.perf_counter() - started < 2


def test_5xx_every_time_makes_the_endpoint_unavailable(stub: OpenAIStub) -> None:
    stub.script(*[Reply(status=500)] * 4)
    client = client_for(stub, max_retries=3)
    with pytest.raises(LLMUnavailable) as err:
        client.complete(HELLO)
    message = str(err.value)
    assert stub.url in message and "4 attempts" in message and "HTTP 500" in message
    assert "running" in message  # says what to do
    assert stub.count == 4
    assert (client.usage.retries, client.usage.failures, client.usage.calls) == (3, 1, 0)


def test_a_4xx_is_not_retried(stub: OpenAIStub) -> None:
    stub.script(Reply(status=400))
    client = client_for(stub)
    with pytest.raises(LLMError, match="HTTP 400") as err:
        client.complete(HELLO)
    assert not isinstance(err.value, LLMUnavailable)
    assert stub.count == 1 and client.usage.retries == 0


def test_a_timeout_is_retried(stub: OpenAIStub) -> None:
    stub.script(Reply(delay_s=1.0, content="late"), Reply(content="on time"))
    client = client_for(stub, timeout_s=0.2)
    assert client.complete(HELLO) == ["on time"]
    assert client.usage.retries == 1


def test_a_dead_port_fails_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIClient(f"http://127.0.0.1:{port}/v1", "m", backoff_s=0.01, max_retries=2)
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable, match=f"127.0.0.1:{port}"):
        client.complete(HELLO)
    assert time.perf_counter() - started < 3
    assert client.usage.retries == 2


def test_n_is_sent_once_and_falls_back_when_ignored(stub: OpenAIStub) -> None:
    client = client_for(stub)
    assert client.complete(HELLO, n=3, temperature=0.7) == ["ok"] * 3
    assert stub.count == 1 and stub.bodies[0]["n"] == 3
    ignoring = client_for(stub)
    stub.default = Reply(content="one", ignore_n=True)
    assert ignoring.complete(HELLO, n=3) == ["one"] * 3
    assert stub.count == 1 + 3  # one n=3 call answered once, then two single calls
    assert ignoring.complete(HELLO, n=2) == ["one"] * 2
    assert all("n" not in body for body in stub.bodies[-2:])  # learnt: no more n


def test_json_schema_is_sent_as_response_format(stub: OpenAIStub) -> None:
    schema = schema_of("judge_triple")
    OpenAIClient(stub.url, "m").complete(HELLO, response_schema=schema)
    assert stub.bodies[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    OpenAIClient(stub.url, "m", use_json_schema=False).complete(HELLO, response_schema=schema)
    assert "response_format" not in stub.bodies[-1]


def test_the_cache_answers_repeats_without_http_even_in_a_new_client(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    stub.script(Reply(content="cached me", prompt_tokens=11, completion_tokens=4))
    first = CachedClient(client_for(stub), ResponseCache(tmp_path))
    assert first.complete(HELLO, n=2, temperature=0.9) == ["cached me"] * 2
    assert first.complete(HELLO, n=2, temperature=0.9) == ["cached me"] * 2
    assert stub.count == 1
    assert (first.usage.calls, first.usage.cache_hits, first.usage.prompt_tokens) == (1, 1, 11)
    second = CachedClient(client_for(stub), ResponseCache(tmp_path))
    assert second.complete(HELLO, n=2, temperature=0.9) == ["cached me"] * 2
    assert stub.count == 1 and second.usage.cache_hits == 1 and second.usage.calls == 0
    second.complete(HELLO, n=2, temperature=0.9, extra="salt")  # another key: a real call
    assert stub.count == 2 and len(ResponseCache(tmp_path)) == 2
    files = list(tmp_path.glob("??/*.json"))
    assert all(f.parent.name == f.stem[:2] for f in files)


def test_concurrency_is_bounded(stub: OpenAIStub) -> None:
    stub.default = Reply(delay_s=0.05)
    client = client_for(stub, concurrency=4)
    requests = [Request([{"role": "user", "content": f"q{i}"}]) for i in range(16)]
    assert client.complete_many(requests) == [["ok"]] * 16
    assert stub.count == 16 and 2 <= stub.max_in_flight <= 4


def test_embeddings(stub: OpenAIStub) -> None:
    assert client_for(stub).embed(["a b", "xyz"]) == [[3.0, 1.0, 1.0], [3.0, 0.0, 0.0]]


def test_ask_structured_repairs_a_fenced_answer(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.script(Reply(content=f"Sure! Here it is:\n```json\n{JUDGED}\n```\nAnything else?"))
    client = CachedClient(client_for(stub), ResponseCache(tmp_path))
    result = ask_structured(client, "judge_triple", HELLO)
    assert result.answers == [JudgementAnswer(valid=True, confidence=0.8)]
    assert (result.malformed, result.repaired, result.skipped) == (1, 1, 0)
    assert stub.bodies[0]["response_format"]["json_schema"]["schema"] == schema_of("judge_triple")


def test_ask_structured_reasks_a_malformed_sample(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.script(Reply(content=["not json", JUDGED]), Reply(content=JUDGED))
    client = CachedClient(client_for(stub), ResponseCache(tmp_path))
    result = ask_structured(client, "judge_triple", HELLO, n=2, temperature=0.7)
    assert len(result.answers) == 2
    assert (result.malformed, result.repaired, result.skipped) == (1, 0, 0)
    assert [b.get("n") for b in stub.bodies] == [2, None]  # only the bad sample is asked again
    assert len(ResponseCache(tmp_path)) == 2  # the re-ask has its own cache key


def test_ask_structured_skips_what_stays_malformed(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.default = Reply(content='{"valid": "maybe"')
    client = CachedClient(client_for(stub), ResponseCache(tmp_path))
    result = ask_structured(client, "judge_triple", HELLO, retries=2)
    assert result.answers == []
    assert (result.malformed, result.repaired, result.skipped) == (3, 0, 1)
    assert stub.count == 3  # first ask + 2 re-asks, none served from the cached bad answer


def test_replay_answers_recorded_prompts_and_raises_for_others(stub: OpenAIStub, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    stub.script(Reply(content="recorded"))
    CachedClient(client_for(stub), cache).complete(HELLO, n=1)
    for source in (tmp_path / "cache", tmp_path / "rec.jsonl"):
        if source.suffix:
            assert write_jsonl(cache, source) == 1
        replay = ReplayClient(source, "stub-model")
        assert replay.complete(HELLO) == ["recorded"]
        assert replay.usage.prompt_tokens == 10
        other: list[Message] = [{"role": "user", "content": "never asked"}]
        key = cache_key("stub-model", Request(other))
        with pytest.raises(LLMError, match=key):
            replay.complete(other)
    assert stub.count == 1
    assert json.loads((tmp_path / "rec.jsonl").read_text())["responses"] == ["recorded"]


def test_usage_report_and_cost() -> None:
    usage = Usage(calls=3, cache_hits=2, prompt_tokens=1500, completion_tokens=500).merge(Usage(calls=1))
    text = usage.report()
    assert (
        "4 calls" in text and "2 cache hits" in text and "1,500 prompt" in text and "500 completion" in text
    )
    assert usage.cost(0.001, 0.002) == pytest.approx(0.0025)
    assert "cost 0.0025" in usage.report(0.001, 0.002)


def test_complete_inside_a_running_loop_says_to_await(stub: OpenAIStub) -> None:
    async def misuse() -> list[str]:
        return client_for(stub).complete(HELLO)

    with pytest.raises(LLMError, match="await acomplete"):
        asyncio.run(misuse())

    async def proper() -> list[list[str]]:
        async with client_for(stub) as client:
            return [await client.acomplete(HELLO), *await client.acomplete_many([Request(HELLO, n=2)])]

    assert asyncio.run(proper()) == [["ok"], ["ok", "ok"]]


def test_registry_and_repair(tmp_path: Path) -> None:
    assert set(LLM_CLIENTS) >= {"openai", "replay"}
    assert make_client("openai", base_url="http://127.0.0.1:1/v1", model="m").name == "openai"
    with pytest.raises(LLMError, match="openai, replay"):
        make_client("nope")
    assert repair('```json\n{"a": {"b": 1}}\n``` trailing') == '{"a": {"b": 1}}'
