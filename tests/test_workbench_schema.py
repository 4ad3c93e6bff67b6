"""Schemathesis against the workbench's own OpenAPI description: for every operation the app
declares (explore, queries, runs, and whatever review and audience endpoints it has), generated
input — valid and not — never makes the server answer 5xx. The app runs over HTTP on a copy of
the small world's store; hypothesis is derandomised and a few examples per operation keep the
file well under a minute."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from graph.store import StoreConfig
from queries.library import load_library
from tests.support.workbench import running_workbench, workbench_config
from workbench.app import WorkbenchConfig, create_app

EXAMPLES = 25  # per operation; raise locally to fuzz harder
# the app's own OpenAPI document (building the app opens no store; the server below does)
schema = schemathesis.openapi.from_dict(create_app(WorkbenchConfig(store=StoreConfig())).openapi())


@pytest.fixture(scope="module")
def base_url(world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = workbench_config(world_store[1], tmp_path_factory.mktemp("workbench-fuzz"), world=world_store[0])
    with running_workbench(config) as url:
        yield url


def test_the_served_description_is_the_one_tested(base_url: str) -> None:
    assert httpx.get(f"{base_url}/openapi.json").json() == schema.raw_schema


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_server_error_on_generated_input(case: schemathesis.Case[Any], base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=60)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has neither; as text they are below
    st.text(max_size=12),
    st.sampled_from(
        ["User", "Intent", "HAS_INTENT", "NEEDS|SERVES", "3", "0.5", "u_0000001", "int_pregnancy"]
    ),
    st.lists(st.text(max_size=8), max_size=3),
)


@pytest.fixture(scope="module")
def query_url(_small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second app on another copy of the store, with a short query timeout (a fuzzed k-hop
    query may be slow: it is then refused with 400, as the CLI refuses it)."""
    tmp = tmp_path_factory.mktemp("workbench-fuzz-queries")
    shutil.copytree(_small_world[1], tmp / "graph")  # the session's store, which no one holds open
    config = workbench_config(StoreConfig(path=tmp / "graph", query_timeout_s=5.0), tmp)
    with running_workbench(config) as url:
        yield url


@pytest.mark.slow
@hypothesis.settings(max_examples=100, deadline=None, derandomize=True, database=None)
@hypothesis.given(data=st.data())
def test_named_queries_never_fail_on_generated_parameters(query_url: str, data: st.DataObject) -> None:
    """Every read-only library query, with parameters of any JSON type (and unknown ones): a
    table or a one-line 400, never a 5xx; the download takes the same parameters as text."""
    lib = load_library()
    name = data.draw(st.sampled_from([n for n in lib.names() if not lib.get(n).writes]))
    keys = [p.name for p in lib.get(name).params]
    params = data.draw(st.dictionaries(st.sampled_from([*keys, "extra"]), VALUES, max_size=len(keys) + 1))
    response = httpx.post(f"{query_url}/api/queries/{name}", json={"params": params}, timeout=60)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "\n" not in response.json()["error"]
    text = {k: str(v) for k, v in params.items() if v is not None and not isinstance(v, list)}
    download = httpx.get(f"{query_url}/api/queries/{name}/download", params=text, timeout=60)
    assert download.status_code in (200, 400), download.text
