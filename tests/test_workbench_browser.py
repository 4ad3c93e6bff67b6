"""The workbench's pages in headless Chromium (Debian's ``chromium`` + ``chromium-driver``): search a
node and expand it, accept a mined triple (it lands in the feedback file), refuse a too-small
audience and export a valid one, list the runs; a screenshot of each page is kept.

The store is the ``world_store`` copy plus a small mined KG (two intents, one round, the offline
teacher). Screenshots go to the test's ``tmp_path`` and, with ``MOKG_SCREENSHOTS=DIR``, into DIR.

The docs' screenshots (``docs/figures/workbench_<page>.png``) come from the same page drivers
against any store (copy the demo store first: the embedded store admits one process)::

    cp -r mokg-data/graph /tmp/wb-demo && \\
        .venv/bin/python -m tests.test_workbench_browser /tmp/wb-demo docs/figures
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from graph.store import StoreConfig, open_store
from tests.support.workbench import running_workbench, workbench_config

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30.0
PAGES = ("explore", "review", "audiences", "runs")
SALT = "pepper-and-salt-0123"


# ---- the browser and the server -------------------------------------------------------------


def chrome() -> Any:
    """Headless Chromium through Debian's chromedriver (Selenium Manager never downloads anything)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing: install chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,960"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """``check()``'s first truthy value (exceptions count as not yet); fails after WAIT_S saying what."""
    deadline, last = time.monotonic() + WAIT_S, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the page is still loading
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


def mine_small_kg(graph: Path, work: Path) -> str:
    """Two intents, one round, zero noise, through the offline teacher; the mining run's id."""
    import torch

    from mining.llm.cache import ResponseCache
    from mining.llm.cached import CachedClient
    from mining.llm.openai_http import OpenAIClient
    from mining.pipeline.build import BuildRequest, JobParts, run_build
    from mining.pipeline.config import MiningConfig
    from mining.pipeline.embed import Embedder
    from mining.pipeline.seeds import load_seeds
    from mining.teacher import NoiseConfig, TeacherServer

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with (
            open_store(StoreConfig(path=graph)) as store,
            TeacherServer(port=0, noise=NoiseConfig()) as server,
        ):
            seeds = load_seeds(store, "intents", limit=2, seed=0)
            client = CachedClient(OpenAIClient(server.base_url, server.model), ResponseCache(work / "cache"))
            request = BuildRequest(MiningConfig(rounds=1, samples=2), workdir=work / "build")
            built = run_build(store, request, client=client, parts=JobParts(Embedder(), seeds=tuple(seeds)))
    finally:
        torch.set_num_threads(before)
    assert built.mining is not None
    return built.mining.run_id


def shoot(driver: Any, page: str, *dirs: Path | None) -> None:
    """A screenshot of the page as ``workbench_<page>.png`` in each of ``dirs`` given."""
    for folder in dirs:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(folder / f"workbench_{page}.png"))


# ---- page drivers (the tests and the docs' screenshots share them) ---------------------------


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def graph_nodes(driver: Any) -> int:
    return int(driver.execute_script("return window.WB_CY ? window.WB_CY.nodes().length : 0"))


def open_page(driver: Any, base: str, page: str, ready: str) -> None:
    """Load ``/page`` and wait until the script ``ready`` (a JS expression) is true."""
    driver.get(f"{base}/{page}")
    wait_for(lambda: driver.execute_script(f"return {ready}"), f"the {page} page to load")


def explore_search(driver: Any, base: str, text: str) -> int:
    """Search ``text``, click the first hit; the number of nodes drawn."""
    open_page(driver, base, "explore", "document.querySelectorAll('#relations input').length > 0")
    by_id(driver, "q").send_keys(text)
    by_id(driver, "search-form").submit()
    hit = wait_for(lambda: driver.find_element("css selector", "#hits button.hit"), "a search hit")
    hit.click()
    return int(wait_for(lambda: graph_nodes(driver), "the neighbourhood to be drawn"))


def click_graph_node(driver: Any, key: str) -> None:
    """A real mouse click on node ``key`` on cytoscape's canvas."""
    from selenium.webdriver.common.action_chains import ActionChains

    pos = driver.execute_script("return window.WB_CY.getElementById(arguments[0]).renderedPosition()", key)
    box = by_id(driver, "graph")
    dx, dy = pos["x"] - box.size["width"] / 2, pos["y"] - box.size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(box, int(dx), int(dy)).click().perform()


def named_query(driver: Any, name: str, params: dict[str, str]) -> tuple[list[str], list[list[str]], str]:
    """Run a named query from its form; the table's columns and rows, and the CSV link."""
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, "query-name")).select_by_value(name)
    for key, value in params.items():
        field = driver.find_element("css selector", f"#query-form [data-param='{key}']")
        field.clear()
        field.send_keys(value)
    driver.find_element("css selector", "#query-form button[type='submit']").click()
    wait_for(lambda: by_id(driver, "query-downloads").is_displayed(), "the query's result")
    columns = [th.text for th in driver.find_elements("css selector", "#query-result th")]
    rows = [
        [td.text for td in tr.find_elements("css selector", "td")]
        for tr in driver.find_elements("css selector", "#query-result tbody tr")
    ]
    return columns, rows, str(by_id(driver, "download-csv").get_attribute("href"))


def review_queue(driver: Any, base: str) -> str:
    """Open the review page; the key of the current item."""
    open_page(driver, base, "review", "document.getElementById('accept') !== null")
    selected = driver.find_element("css selector", "#queue li.selected")
    return str(selected.get_attribute("data-key"))


def audience_preview(driver: Any, base: str, method: str, size: int) -> None:
    from selenium.webdriver.support.ui import Select

    open_page(driver, base, "audiences", "document.querySelectorAll('#campaign option').length > 0")
    Select(by_id(driver, "method")).select_by_value(method)
    by_id(driver, "size").clear()
    by_id(driver, "size").send_keys(str(size))
    by_id(driver, "preview").click()
    wait_for(lambda: driver.find_elements("css selector", "#curve svg polyline"), "the size curve")
    wait_for(lambda: driver.find_elements("css selector", "#sample tbody tr"), "the sample")


def audience_overlap(driver: Any) -> list[str]:
    """Compare the checked methods; the matrix's row labels."""
    by_id(driver, "overlap-form").submit()
    rows = wait_for(lambda: driver.find_elements("css selector", "#overlap tbody tr"), "the overlap table")
    return [r.find_element("css selector", "td").text for r in rows]


def audience_export(driver: Any, size: int, salt: str) -> str:
    """Submit the export form; the text of the result (manifest or refusal)."""
    by_id(driver, "export-size").clear()
    by_id(driver, "export-size").send_keys(str(size))
    by_id(driver, "export-salt").clear()
    by_id(driver, "export-salt").send_keys(salt)
    before = by_id(driver, "export-result").text
    by_id(driver, "export-form").submit()
    return str(
        wait_for(lambda: (t := by_id(driver, "export-result").text) != before and t, "the export result")
    )


def runs_table(driver: Any, base: str) -> list[str]:
    open_page(driver, base, "runs", "document.querySelector('#runs table, #runs p') !== null")
    return [
        b.get_attribute("data-run") for b in driver.find_elements("css selector", "#runs button[data-run]")
    ]


# ---- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbench(
    world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The server over the world store plus a mined KG, and a browser; what the tests need. The
    store is opened here so that a second server, with a token, can share it."""
    _world, graph = world_store
    tmp = tmp_path_factory.mktemp("workbench-browser")
    driver = chrome()  # first: without Chromium the tests fail at once, saying what to install
    try:
        mined = mine_small_kg(graph, tmp)
        config = workbench_config(graph, tmp)
        with open_store(StoreConfig(path=graph)) as store, running_workbench(config, store) as base:
            yield {"base": base, "driver": driver, "config": config, "mined": mined, "store": store}
    finally:
        driver.quit()


def _shots() -> Path | None:
    env = os.environ.get("MOKG_SCREENSHOTS")
    return Path(env) if env else None


def test_search_a_node_expand_it_on_click_and_run_a_named_query(
    workbench: dict[str, Any], tmp_path: Path
) -> None:
    import httpx

    driver, base = workbench["driver"], workbench["base"]
    first = explore_search(driver, base, mined_intent(base, workbench["mined"]))
    assert first >= 2  # the intent and at least one neighbour
    keys = driver.execute_script("return window.WB_CY.nodes().not('.root').map(n => n.id())")
    category = next(k for k in keys if k.startswith("Category:"))
    click_graph_node(driver, category)
    grown = wait_for(lambda: (n := graph_nodes(driver)) > first and n, "more nodes after the click")
    assert grown > first
    drawn = driver.execute_script("return window.WB_CY.edges().map(e => [e.data('source'), e.data('type')])")
    heads = {"NEEDS": "Intent:", "BELONGS_TO": "Item:", "TARGETS": "Campaign:"}  # as the schema says
    wrong = [(src, t) for src, t in drawn if t in heads and not src.startswith(heads[t])]
    assert not wrong, f"edges drawn against the schema's direction: {wrong[:3]}"
    assert category.split(":", 1)[1] in by_id(driver, "details").text  # its properties are shown
    columns, rows, csv = named_query(driver, "top_degree", {"label": "Category", "limit": "5"})
    assert len(rows) == 5 and columns
    download = httpx.get(csv)  # the link's URL carries the form's parameters
    assert download.status_code == 200 and download.text.splitlines()[0].split(",") == columns
    assert len(download.text.splitlines()) == 1 + 5
    shoot(driver, "explore", tmp_path, _shots())


def mined_intent(base: str, run: str | None = None) -> str:
    """The name of an Intent at the head of a mined fact, as the review API lists it."""
    import httpx

    items = httpx.get(f"{base}/api/review", params={"run": run} if run else {}).json()["items"]
    return str(next(it["head"]["name"] for it in items if it["head"]["label"] == "Intent"))


def test_accept_by_key_then_reject_and_retire_by_button(workbench: dict[str, Any], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver, base, config = workbench["driver"], workbench["base"], workbench["config"]
    key = review_queue(driver, base)
    assert "Provenance" in by_id(driver, "current").text and "prompts" in by_id(driver, "current").text
    driver.find_element(By.TAG_NAME, "body").send_keys("a")  # the keyboard shortcut
    wait_for(lambda: by_id(driver, "message").text.startswith("accept"), "the accept message")
    rows = [json.loads(line) for line in config.feedback.read_text().splitlines()]
    assert [r["label"] for r in rows if r["key"] == key] == [1]
    badge = driver.find_element(By.CSS_SELECTOR, "#queue li.decided .badge")
    assert badge.text == "accept"
    second = str(driver.find_element(By.CSS_SELECTOR, "#queue li.selected").get_attribute("data-key"))
    assert second != key  # the queue moved on to the next undecided fact
    by_id(driver, "retire").click()
    by_id(driver, "reject").click()
    message = wait_for(lambda: "retired in run" in (t := by_id(driver, "message").text) and t, "the retire")
    assert "undo: mokg runs delete" in message
    rows = [json.loads(line) for line in config.feedback.read_text().splitlines()]
    assert [r["label"] for r in rows if r["key"] == second] == [0]
    shoot(driver, "review", tmp_path, _shots())


def test_a_too_small_audience_is_refused_and_a_valid_one_exported(
    workbench: dict[str, Any], tmp_path: Path
) -> None:
    driver, base, config = workbench["driver"], workbench["base"], workbench["config"]
    audience_preview(driver, base, "ppr", 120)
    assert len(audience_overlap(driver)) == 2  # rule and ppr, checked by default
    refused = audience_export(driver, 5, SALT)
    assert "below the minimum of 100" in refused
    assert by_id(driver, "export-refusal").is_displayed()
    done = audience_export(driver, 120, SALT)
    assert "Exported" in done
    manifest = json.loads(by_id(driver, "export-manifest").text)
    exported = [p for p in config.exports.rglob("*") if p.is_file() and p.suffix in (".csv", ".parquet")]
    assert exported and manifest
    shoot(driver, "audiences", tmp_path, _shots())


def test_the_runs_page_lists_runs_and_rolls_one_back_after_its_id_is_typed(
    workbench: dict[str, Any], tmp_path: Path
) -> None:
    import httpx

    driver, base = workbench["driver"], workbench["base"]
    last = httpx.get(f"{base}/api/review", params={"run": workbench["mined"]}).json()["items"][-1]
    retired = httpx.post(
        f"{base}/api/review/decision", json={"key": last["key"], "decision": "reject", "retire": True}
    ).json()["retired_run"]
    listed = runs_table(driver, base)
    assert {workbench["mined"], retired} <= set(listed) and any(r.startswith("ingest-") for r in listed)
    shoot(driver, "runs", tmp_path, _shots())
    roll_back(driver, retired, typed="not-the-id")
    refused = wait_for(lambda: by_id(driver, "delete-result").text, "the refusal")
    assert "Refused" in refused and f"confirm={retired}" in refused
    roll_back(driver, retired, typed=retired)
    wait_for(lambda: "rolled back" in by_id(driver, "delete-result").text, "the roll-back")
    wait_for(lambda: retired not in runs_table_now(driver), "the run to leave the table")
    assert workbench["mined"] in runs_table_now(driver)


def roll_back(driver: Any, run_id: str, typed: str) -> None:
    """Click the run's roll-back button, type ``typed`` into the confirmation, submit."""
    driver.find_element("css selector", f"#runs button[data-run='{run_id}']").click()
    wait_for(lambda: by_id(driver, "confirm-delete").is_displayed(), "the confirmation dialog")
    by_id(driver, "delete-confirm").send_keys(typed)
    by_id(driver, "delete-ok").click()
    wait_for(lambda: not by_id(driver, "confirm-delete").is_displayed(), "the dialog to close")


def runs_table_now(driver: Any) -> list[str]:
    buttons = driver.find_elements("css selector", "#runs button[data-run]")
    return [str(b.get_attribute("data-run")) for b in buttons]


def test_with_a_token_the_pages_send_it_and_carry_it_between_pages(
    workbench: dict[str, Any], tmp_path: Path
) -> None:
    import httpx

    driver, config = workbench["driver"], workbench["config"]
    secret = "s3cret-token"
    with running_workbench(replace(config, token=secret), workbench["store"]) as base:
        assert httpx.get(f"{base}/api/labels").status_code == 401
        assert httpx.get(f"{base}/explore").status_code == 401
        driver.get(f"{base}/explore?token={secret}")
        labels = "the labels (fetched with the token)"
        wait_for(lambda: driver.find_elements("css selector", "#relations input"), labels)
        driver.refresh()  # a reload still carries the token
        wait_for(lambda: driver.find_elements("css selector", "#relations input"), labels)
        stored = driver.execute_script("return sessionStorage.getItem('mokg-workbench-token')")
        assert stored == secret
        driver.find_element("css selector", "a[data-nav][href^='/runs']").click()
        runs = "the runs page (loaded with the token)"
        wait_for(lambda: driver.find_elements("css selector", "#runs button[data-run]"), runs)
        assert not by_id(driver, "message").is_displayed()


# ---- the docs' screenshots -------------------------------------------------------------------


def screenshots(graph: Path, out: Path) -> None:
    """One screenshot per page over the store ``graph`` (feedback and exports under a temp dir)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mokg-wb-shots-") as tmp:
        config = workbench_config(graph, Path(tmp))
        driver = chrome()
        try:
            with running_workbench(config) as base:
                _demo_pages(driver, base, out)
        finally:
            driver.quit()


def _demo_pages(driver: Any, base: str, out: Path) -> None:
    explore_search(driver, base, mined_intent(base))
    keys = driver.execute_script("return window.WB_CY.nodes().not('.root').map(n => n.id())")
    click_graph_node(driver, next(k for k in keys if k.startswith("Category:")))
    time.sleep(1.0)
    shoot(driver, "explore", out)
    review_queue(driver, base)
    shoot(driver, "review", out)
    audience_preview(driver, base, "ppr", 200)
    by_id(driver, "log-scale").click()  # ppr's scores fall steeply: the log scale shows the curve
    audience_overlap(driver)
    audience_export(driver, 5, SALT)
    shoot(driver, "audiences", out)
    runs_table(driver, base)
    shoot(driver, "runs", out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.test_workbench_browser STORE_DIR OUT_DIR")
    screenshots(Path(sys.argv[1]), Path(sys.argv[2]))
