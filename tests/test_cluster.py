"""Sharding on a Dask LocalCluster (issue 21, part 3): the mining build with its LLM requests answered
by two worker processes ends with the same graph as the single-process build, also when a shard fails
once and is retried; audience scores computed in user ranges equal the single process's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from mining.llm.assemble import LLMSpec
from mining.llm.base import Completion, Request, Usage
from mining.pipeline.build import BuildRequest, BuildResult, run_build
from mining.pipeline.config import MiningConfig
from mining.pipeline.sharded import answer_shard, run_sharded_build

if TYPE_CHECKING:
    from distributed import Client

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pytest.importorskip("distributed")

CONFIG = MiningConfig(rounds=2, samples=3)
Built = tuple[BuildResult, dict[str, pd.DataFrame], pd.DataFrame, Path]
VOLATILE = {"run_id", "source", "created_at"}  # differ between any two runs of one build
SYSTEM = {"Run", "Change", "TableHash"}


@pytest.fixture(scope="module")
def dask() -> Iterator[Client]:
    from graph.cluster import open_cluster

    with open_cluster("local:2") as client:
        yield client


def _graph(store: GraphStore) -> dict[str, pd.DataFrame]:
    """Every node and edge table, without run ids and timestamps, as sorted frames."""
    out: dict[str, pd.DataFrame] = {}
    schema = store.refresh_schema()
    for label in schema.labels.values():
        if label.name not in SYSTEM:
            props = [p.name for p in label.props if p.name not in VOLATILE]
            out[label.name] = store.node_table(label.name, props)
    for rel in schema.rel_types.values():
        for h, t in rel.endpoints:
            props = [p.name for p in rel.props if p.name not in VOLATILE]
            out[f"{h}-{rel.name}-{t}"] = store.edge_table((h, rel.name, t), props)
    return {k: v.sort_values(list(v.columns), ignore_index=True) for k, v in out.items()}


def _build(world_store: tuple[Path, Path], root: Path, cluster: Any = None, **kw: Any) -> Built:
    """A 4-seed, 2-round build at medium noise on a copy of the small world, its own LLM cache."""
    shutil.copytree(world_store[1], root / "graph")
    spec = LLMSpec("teacher", noise="medium", cache=root / "llm")
    request = BuildRequest(CONFIG, spec, "intents", limit=4, workdir=root / "work")
    with open_store(StoreConfig(path=root / "graph")) as store:
        if cluster is None:
            built: BuildResult = run_build(store, request)
        else:
            built = run_sharded_build(store, request, cluster, **kw)
        runs = store.runs()
        return built, _graph(store), runs[runs["kind"] == "mine"], root / "graph"


@pytest.fixture(scope="module")
def single(world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(world_store, tmp_path_factory.mktemp("single"))


def _same_graph(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        pd.testing.assert_frame_equal(left[key], right[key], obj=key)


def test_the_sharded_build_ends_with_the_single_process_graph(
    single: Built, world_store: tuple[Path, Path], tmp_path: Path, dask: Client
) -> None:
    built, graph, runs, _ = _build(world_store, tmp_path, dask)
    one, one_graph, one_runs, _ = single
    assert built.report["triples"] == one.report["triples"] > 0
    assert built.report["triples_per_relation"] == one.report["triples_per_relation"]
    _same_graph(graph, one_graph)
    assert len(runs) == len(one_runs) == 1 and runs["status"].tolist() == ["done"]
    # the workers asked every prompt (their own cache started empty): same calls, tokens, answers
    llm, one_llm = built.report["llm"], one.report["llm"]
    assert (llm["calls"], llm["completion_tokens"]) == (one_llm["calls"], one_llm["completion_tokens"])
    lines = sorted((tmp_path / "work" / "transcript.jsonl").read_text().splitlines())
    assert lines == sorted((one.build.path / "transcript.jsonl").read_text().splitlines())


class FailsOnce:
    """A shard function that answers half its shard, then dies, the first time it runs anywhere
    (the marker file is shared by the worker processes)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, spec: LLMSpec, requests: list[Request]) -> tuple[list[Completion], Usage]:
        try:
            with self.marker.open("x") as fh:
                fh.write("failed once")
        except FileExistsError:
            return answer_shard(spec, requests)
        answer_shard(spec, requests[: len(requests) // 2])
        raise RuntimeError("worker lost mid-shard")


def test_a_shard_that_fails_once_is_retried_and_the_graph_is_the_same(
    single: Built, world_store: tuple[Path, Path], tmp_path: Path, dask: Client
) -> None:
    marker = tmp_path / "failed"
    built, graph, runs, _ = _build(world_store, tmp_path / "b", dask, shard=FailsOnce(marker))
    assert marker.read_text() == "failed once"
    _same_graph(graph, single[1])
    assert runs["status"].tolist() == ["done"]
    assert built.report["llm"]["cache_hits"] >= 1  # the retry found the half it had answered


class FailsFrom:
    """A shard function that fails every time from its ``k``-th call on (a worker gone for good)."""

    def __init__(self, calls: Path, k: int) -> None:
        self.calls, self.k = calls, k

    def __call__(self, spec: LLMSpec, requests: list[Request]) -> tuple[list[Completion], Usage]:
        with self.calls.open("a") as fh:
            fh.write("call\n")
        if len(self.calls.read_text().splitlines()) >= self.k:
            raise RuntimeError("worker gone")
        return answer_shard(spec, requests)


def test_a_shard_that_keeps_failing_fails_the_run_and_a_rerun_resumes_to_the_same_graph(
    single: Built, world_store: tuple[Path, Path], tmp_path: Path, dask: Client
) -> None:
    with pytest.raises(RuntimeError, match="worker gone"):
        _build(world_store, tmp_path, dask, shard=FailsFrom(tmp_path / "calls", k=7))
    spec = LLMSpec("teacher", noise="medium", cache=tmp_path / "llm")
    request = BuildRequest(CONFIG, spec, "intents", limit=4, workdir=tmp_path / "work")
    with open_store(StoreConfig(path=tmp_path / "graph")) as store:
        assert store.runs().query("kind == 'mine'")["status"].tolist() == ["failed"]
        resumed = run_sharded_build(store, request, dask)
        assert store.runs().query("kind == 'mine'")["status"].tolist() == ["done"]
        _same_graph(_graph(store), single[1])
    assert resumed.report["llm"]["cache_hits"] > 0  # what the failed run had asked was not asked again


def test_scoring_in_user_ranges_equals_the_single_process(single: Built, dask: Client) -> None:
    """On the single-process build's store: its mined NEEDS edges are the GNN's weak labels."""
    from gnn.audience.base import AudienceError
    from gnn.audience.gnn import GNNConfig, GNNTargeter
    from gnn.audience.ppr import PPRTargeter
    from gnn.audience.sharded import score_sharded

    with open_store(StoreConfig(path=single[3])) as store:
        campaign = sorted(store.node_table("Campaign")["id"])[0]
        gnn = GNNTargeter().fit(store, GNNConfig(dim=8, epochs=20, features=False, seed=3))
        ppr = PPRTargeter().fit(store)
        whole = gnn.score(campaign)
        ranged = score_sharded(gnn, campaign, dask, ranges=7)
        with pytest.raises(AudienceError, match="ppr scores the graph as a whole"):
            score_sharded(ppr, campaign, dask)
    assert len(ranged) == len(whole) and ranged["user_id"].is_unique
    merged = whole.merge(ranged, on="user_id", suffixes=("", "_ranged"))
    np.testing.assert_allclose(merged["score_ranged"], merged["score"], rtol=0, atol=1e-9)
    assert merged["score"].std() > 0


def test_a_cluster_is_local_n_or_a_scheduler_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from graph.cluster import ClusterSpec, open_cluster

    assert ClusterSpec.parse("local:3") == ClusterSpec(workers=3)
    assert ClusterSpec.parse("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("local", "local:0", "ray://x", "10.0.0.5:8786"):
        with pytest.raises(InputError, match="--cluster"):
            ClusterSpec.parse(bad)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as where the scale extra is not installed
    with pytest.raises(InputError, match=r"install mokg\[scale\]"), open_cluster("local:2"):
        pass


def test_the_single_process_path_never_imports_dask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mokg.cli, mining.pipeline.build, gnn.audience.base; "
        "from typer.testing import CliRunner; CliRunner().invoke(mokg.cli.app, ['build', '--help']); "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
