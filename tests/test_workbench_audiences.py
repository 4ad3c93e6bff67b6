"""The workbench's audience API over HTTP (issue 22): campaigns, a method's size curve and sample,
the overlap between methods, and export with exactly the CLI's guards (minimum size, salted hashing,
audit log), refused with the CLI's own messages.

A real embedded store (the small world, 300 users) with a small PAIR build against the world's
teacher, so the rule method has a KG to walk; the app is served by uvicorn on a free port."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from gnn.audience.base import AudienceError
from graph.store import StoreConfig, open_store
from tests.support.workbench import running_workbench, workbench_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SALT = "a-secret-of-24-characters"
GNN = {"features": False, "epochs": 2}  # a tiny GNN: the API's shapes, not its quality


def _mine(world: Path, graph: Path, work: Path) -> None:
    """A 1-round PAIR build from the campaigns' intents against the world's teacher (the rule method
    walks its facts from those intents to users)."""
    from mining.llm.assemble import LLMSpec
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    spec = LLMSpec("teacher", noise="low", world=world, cache=work / "llm")
    seeds = work / "seeds.jsonl"
    with open_store(StoreConfig(path=graph)) as store:
        targeted = set(store.edge_table(("Campaign", "TARGETS", "Intent"))["tail"])
        intents = store.node_table("Intent", ["name"])
        names = sorted(intents[intents["id"].isin(targeted)]["name"])
        seeds.write_text("".join(json.dumps({"name": n, "type": "Intent"}) + "\n" for n in names))
        request = BuildRequest(MiningConfig(rounds=1, samples=3), spec, str(seeds), workdir=work / "w")
        run_build(store, request)


@pytest.fixture(scope="module")
def served(
    world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    world, graph = world_store
    root = tmp_path_factory.mktemp("audiences")
    _mine(world, graph, root)
    config = workbench_config(graph, root / "files")
    with running_workbench(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield {"client": client, "config": config, "graph": graph}


def _post(client: httpx.Client, path: str, **body: Any) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _refused(client: httpx.Client, path: str, **body: Any) -> str:
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    error: str = r.json()["error"]
    return error


def _campaign(client: httpx.Client) -> str:
    """A campaign the rule method reaches users for (through the mined facts)."""
    for c in client.get("/api/campaigns").json()["campaigns"]:
        if _post(client, "/api/audiences/preview", campaign=c["id"], method="rule", size=100)["reached"]:
            return str(c["id"])
    raise AssertionError("the mined KG reaches no campaign's users")


def test_campaigns_are_listed_with_intents_domain_and_budget(served: dict[str, Any]) -> None:
    r = served["client"].get("/api/campaigns")
    assert r.status_code == 200
    campaigns = r.json()["campaigns"]
    assert [c["id"] for c in campaigns] == ["camp_0000", "camp_0001", "camp_0002", "camp_0003"]
    for c in campaigns:
        assert set(c) == {"id", "name", "intents", "domain", "budget"}
        assert c["intents"] and c["domain"] and c["budget"] >= 1 and c["name"]


def test_a_preview_has_the_size_curve_a_sample_and_why(served: dict[str, Any]) -> None:
    client = served["client"]
    campaign = _campaign(client)
    for method in ("rule", "ppr"):
        p = _post(client, "/api/audiences/preview", campaign=campaign, method=method, size=120, sample=4)
        assert p["users"] == 300 and p["size"] == 120 and 0 < p["reached"] <= 300
        sizes, scores = p["sizes"], p["scores"]
        assert sizes[0] == 1 and sizes[-1] == 300 and len(sizes) == len(scores) <= 100
        assert sizes == sorted(set(sizes)) and scores == sorted(scores, reverse=True)  # the size curve
        sample = p["sample"]
        assert [s["rank"] for s in sample] == [1, 41, 80, 120]  # spread over the audience
        assert sample[0]["score"] == scores[0] and p["threshold"] <= sample[0]["score"]
        assert all(s["user"].startswith("u_") and isinstance(s["why"], list) for s in sample)
        top = sample[0]["why"]  # the best user is explained by paths from the campaign's intents
        assert top and all("User:" + sample[0]["user"] in path for path in top), (method, top)

    assert "unknown campaign 'camp_9999'" in _refused(
        client, "/api/audiences/preview", campaign="camp_9999", method="ppr", size=10
    )
    assert "unknown targeting method 'magic'" in _refused(
        client, "/api/audiences/preview", campaign=campaign, method="magic", size=10
    )
    assert "lookalike needs the advertiser's past conversion log" in _refused(
        client, "/api/audiences/preview", campaign=campaign, method="lookalike", size=10, **GNN
    )
    assert "size must be a positive" in _refused(
        client, "/api/audiences/preview", campaign=campaign, method="ppr", size=0
    )


def test_overlap_is_the_jaccard_index_of_the_methods_top_users(served: dict[str, Any]) -> None:
    client = served["client"]
    campaign = _campaign(client)
    methods = ["rule", "ppr", "gnn"]
    o = _post(client, "/api/audiences/overlap", campaign=campaign, methods=methods, size=150, **GNN)
    assert o["methods"] == methods and o["sizes"] == [150, 150, 150]
    m = o["matrix"]
    assert [m[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert all(m[i][j] == m[j][i] and 0.0 <= m[i][j] <= 1.0 for i in range(3) for j in range(3))
    whole = _post(client, "/api/audiences/overlap", campaign=campaign, methods=["ppr", "rule"], size=300)
    assert whole["matrix"] == [[1.0, 1.0], [1.0, 1.0]]  # everyone is in both
    swapped = _post(client, "/api/audiences/overlap", campaign=campaign, methods=["ppr", "rule"], size=150)
    assert swapped["matrix"][0][1] == m[0][1]
    assert "different methods" in _refused(
        client, "/api/audiences/overlap", campaign=campaign, methods=["ppr", "ppr"], size=10
    )


def _audit(config: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in config.audit_log.read_text().splitlines()]


def test_a_too_small_audience_is_refused_with_the_clis_message(
    served: dict[str, Any], tmp_path: Path
) -> None:
    from mokg.cli import app

    client, config = served["client"], served["config"]
    error = _refused(client, "/api/audiences/export", campaign="camp_0001", method="ppr", size=5)
    assert error == (
        "an audience of 5 users is below the minimum of 100; ask for more users "
        "(smaller audiences can identify people)"
    )
    args = [
        "audience",
        "export",
        "-c",
        "camp_0001",
        "-m",
        "ppr",
        "--size",
        "5",
        "--out",
        str(tmp_path / "a.csv"),
    ]
    cli = CliRunner().invoke(app, [*args, "--audit-log", str(tmp_path / "audit.jsonl")])
    assert isinstance(cli.exception, AudienceError) and str(cli.exception) == error  # the CLI's own words
    assert [e["status"] for e in _audit(config)][-2:] == ["started", "refused"]
    assert _audit(config)[-1]["reason"] == error
    salt = _refused(
        client, "/api/audiences/export", campaign="camp_0001", method="ppr", size=150, salt="short"
    )
    assert salt.startswith("--hash-salt has 5 characters; give a secret of at least 16")
    floor = _refused(
        client, "/api/audiences/export", campaign="camp_0001", method="ppr", size=150, min_size=10
    )
    assert "below this deployment's floor of 100" in floor
    assert not config.exports.exists() or not any(config.exports.iterdir())  # nothing written


def test_a_valid_export_writes_the_file_manifest_and_audit_line(served: dict[str, Any]) -> None:
    client, config = served["client"], served["config"]
    body = {"campaign": "camp_0001", "method": "ppr", "size": 120, "salt": SALT, "format": "csv"}
    manifest = _post(client, "/api/audiences/export", **body)
    out, man = Path(manifest["file"]), Path(manifest["manifest"])
    assert out.parent == config.exports and out.suffix == ".csv" and man.name == out.name + ".manifest.json"
    df = pd.read_csv(out)
    assert len(df) == manifest["count"] == 120 and list(df["rank"]) == list(range(1, 121))
    assert list(df.columns) == ["user_id", "score", "rank", "method", "graph_version"]
    preview = _post(client, "/api/audiences/preview", campaign="camp_0001", method="ppr", size=120, sample=1)
    first = preview["sample"][0]["user"]
    assert df["user_id"].iloc[0] == hashlib.sha256(f"{SALT}:{first}".encode()).hexdigest()  # salted ids
    on_disk = json.loads(man.read_text())
    assert on_disk["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (
        on_disk["run_id"] == manifest["run_id"] and on_disk["hashed"] is True and SALT not in man.read_text()
    )
    assert on_disk["method_config"]["alpha"] == 0.15  # the CLI's ppr config
    audit = [e for e in _audit(config) if e["run_id"] == manifest["run_id"]]
    assert [e["status"] for e in audit] == ["started", "written"] and audit[-1]["count"] == 120


def test_the_servers_conversion_log_reaches_lookalike_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from workbench.audiences import MethodChoice

    log, windows = tmp_path / "log.parquet", tmp_path / "windows.parquet"
    config = MethodChoice("lookalike", features=False, conversions=log, windows=windows).config()
    assert config.conversions == log and config.windows == windows  # as `mokg audience score` builds it
    env = {**os.environ, "MOKG_PATH": str(tmp_path / "graph")}
    done = subprocess.run(
        [sys.executable, "-m", "mokg", "serve", "--conversion-log", str(log)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2 and "log.parquet is not a file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
