"""`mokg chat --replay`, `mokg memory show|forget` and `mokg eval memory` (issue 18) on the small
world's store and on GVD, with the errors a user meets first."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mokg.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


def user_of(graph: Path) -> str:
    from graph.store import StoreConfig, open_store

    with open_store(StoreConfig(backend="embedded", path=graph)) as store:
        return str(sorted(store.node_table("User")["id"])[0])


def test_chat_replay_remembers_across_sessions_and_forget_deletes_it(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    _, graph = world_store
    user = user_of(graph)
    talk = tmp_path / "talk.txt"
    talk.write_text("I started training for a marathon.\nI love green tea.\n---\nWhat am I training for?\n")
    out = tmp_path / "t.jsonl"
    r = runner.invoke(
        app, ["--path", str(graph), "chat", "--user", user, "--replay", str(talk), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output + str(r.exception)
    turns = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(turns) == 3 and turns[0]["session"] != turns[2]["session"]
    assert turns[0]["inserted"] and turns[0]["run_id"]
    assert "marathon" in turns[2]["recalled"][0]["text"]  # the second session recalls the first
    assert "marathon" in turns[2]["answer"]

    shown = runner.invoke(app, ["--path", str(graph), "memory", "show", "--user", user, "--json"])
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.output.splitlines()]
    assert any("marathon" in row["text"] for row in rows) and {row["status"] for row in rows} == {"active"}

    refused = runner.invoke(app, ["--path", str(graph), "memory", "forget", "--user", user])
    assert refused.exit_code != 0 and "--yes" in str(refused.exception)
    gone = runner.invoke(app, ["--path", str(graph), "memory", "forget", "--user", user, "--yes"])
    assert gone.exit_code == 0 and f"forgot {len(rows)} thoughts" in gone.output
    empty = runner.invoke(app, ["--path", str(graph), "memory", "show", "--user", user])
    assert "no active thoughts" in empty.output


def test_chat_refuses_an_unknown_user_and_a_missing_replay_file(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    _, graph = world_store
    talk = tmp_path / "talk.txt"
    talk.write_text("hello\n")
    r = runner.invoke(app, ["--path", str(graph), "chat", "--user", "nobody", "--replay", str(talk)])
    assert r.exit_code != 0 and "no user 'nobody' in the store" in str(r.exception)
    r = runner.invoke(
        app, ["--path", str(graph), "chat", "--user", "x", "--replay", str(tmp_path / "none.txt")]
    )
    assert r.exit_code != 0 and "does not exist" in str(r.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no query key"}\n')
    r = runner.invoke(app, ["--path", str(graph), "chat", "--user", "x", "--replay", str(bad)])
    assert r.exit_code != 0 and "bad.jsonl:1" in str(r.exception)


def test_eval_memory_on_two_gvd_users_writes_its_tables(tmp_path: Path) -> None:
    args = ["eval", "memory", "--gvd-users", "2", "--methods", "tim,tim-exact,raw-history,whole-history"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output + str(r.exception)
    table = pd.read_csv(tmp_path / "memory_gvd.csv")
    assert list(table["method"]) == ["tim", "tim-exact", "raw-history", "whole-history"]
    assert table["probes"].tolist() == [14, 14, 14, 14]  # Emily and Frank: their probing questions
    assert (table["recall@10"] >= table["recall@1"]).all() and (table["recall@10"][:3] > 0.3).all()
    assert "mokg eval memory --datasets gvd" in (tmp_path / "memory_gvd.md").read_text()
    assert (tmp_path / "memory_gvd_sizes.png").stat().st_size > 0
    r = runner.invoke(app, ["eval", "memory", "--methods", "tim,magic", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "unknown method magic" in str(r.exception)
    r = runner.invoke(app, ["eval", "memory", "--datasets", "world", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "needs --world DIR" in str(r.exception)


def test_chat_replays_a_gvd_user_into_an_empty_store_at_the_dialogue_dates(tmp_path: Path) -> None:
    graph = tmp_path / "g"
    base = ["--path", str(graph), "chat", "--user", "Emily"]
    r = runner.invoke(app, [*base, "--replay", "gvd:Emily"])
    assert r.exit_code != 0  # no store, no user: refused without --add-user
    r = runner.invoke(app, [*base, "--add-user", "--replay", "gvd:Emily"])
    assert r.exit_code == 0, r.output + str(r.exception)
    shown = runner.invoke(app, ["--path", str(graph), "memory", "show", "--user", "Emily", "--all", "--json"])
    rows = [json.loads(line) for line in shown.output.splitlines()]
    assert {row["at"] for row in rows} >= {"2023-04-27", "2023-05-06"}  # GVD's days, not today
    assert any("Green Meadow Park" in row["text"] for row in rows)
    r = runner.invoke(app, [*base, "--replay", "gvd:Nobody"])
    assert r.exit_code != 0 and "GVD has no user 'Nobody'" in str(r.exception)


def test_eval_memory_answers_through_an_openai_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.openai_stub import OpenAIStub, Reply

    monkeypatch.setenv("MOKG_CACHE", str(tmp_path / "cache"))
    server = OpenAIStub(Reply(content="No, you told me it ended.")).start()
    try:
        args = [
            "eval",
            "memory",
            "--gvd-users",
            "1",
            "--methods",
            "tim-exact,raw-history",
            "--thinker",
            "spacy",
        ]
        llm = ["--llm", "openai", "--base-url", server.url, "--model", "stub"]
        r = runner.invoke(app, [*args, *llm, "--out", str(tmp_path)])
        assert r.exit_code == 0, r.output + str(r.exception)
        asked = [b["messages"][-1]["content"] for b in server.bodies]
    finally:
        server.stop()
    assert len(asked) == 2 * 7  # Emily's seven questions, once per method
    assert all(a.startswith("Remembered about me:") and "Question: " in a for a in asked)
    table = pd.read_csv(tmp_path / "memory_gvd.csv")
    assert table["answer"].tolist() == [0.0, 0.0]  # the stub's reply answers none of them
