"""The ground-truth ontology: the shipped data meets the issue's minimums and says true things, and
the loader expands NEEDS correctly and rejects broken files with messages that point at the entry."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graph.errors import InputError
from loaders.world.ontology import DEFAULT_DIR, Minimums, Ontology, load_ontology

TINY = Minimums(intents=1, categories=1, levels=3, needs_per_intent=3)


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


def _root(o: Ontology, cat_id: str) -> str:
    return ([cat_id, *o.ancestors(cat_id)])[-1]


# --- the shipped ontology -------------------------------------------------------------------------


def test_shipped_ontology_meets_the_minimums(onto: Ontology) -> None:
    assert onto.version == "1"
    assert len(onto.intents) >= 150
    assert len(onto.categories) >= 300
    assert max(c.level for c in onto.categories.values()) >= 2  # three levels or more
    assert len(onto.brands) >= 150
    kinds = Counter(r.type for r in onto.relations)
    assert kinds["CO_OCCURS_WITH"] >= 150 and kinds["PRECEDES"] >= 60 and kinds["SERVES"] >= 80
    needs = Counter(r.head for r in onto.relations_of("NEEDS"))
    assert set(needs) == set(onto.intents)
    assert all(3 <= n <= 10 for n in needs.values())


def test_domains_roots_and_cold_start(onto: Ontology) -> None:
    assert set(onto.domains) == {"ecommerce", "local_services", "finance", "travel", "mini_apps", "health"}
    assert [d.id for d in onto.domains.values() if d.cold_start] == ["health"]
    roots = [c for c in onto.categories.values() if c.parent is None]
    assert {c.domain for c in roots} == set(onto.domains)
    for cat in onto.categories.values():  # a subtree stays in its root's domain
        assert cat.domain == onto.categories[_root(onto, cat.id)].domain, cat.id
    leaf_domains = Counter(onto.categories[leaf].domain for leaf in onto.leaves())
    assert all(leaf_domains[d] >= 20 for d in onto.domains)


def test_every_root_has_three_brands_and_vocabulary(onto: Ontology) -> None:
    roots = [c for c, cat in onto.categories.items() if cat.parent is None]
    per_root = Counter(r for b in onto.brands.values() for r in {_root(onto, c) for c in b.categories})
    assert all(per_root[r] >= 3 for r in roots), [r for r in roots if per_root[r] < 3]
    for root in roots:
        assert len(onto.vocabulary["adjectives"][root]) >= 8
        assert len(onto.vocabulary["materials_or_features"][root]) >= 6
    templates = onto.vocabulary["query_templates"]
    assert len(templates) >= 12
    for slot in ("{category}", "{brand}", "{intent}", "{adjective}"):
        assert any(slot in t for t in templates)


def test_facts_a_marketer_would_expect(onto: Ontology) -> None:
    wedding = onto.needs("int_wedding_preparation")
    assert wedding["cat_wedding_dresses"] == 1.0
    assert onto.ancestors("cat_wedding_dresses") == ["cat_bridal_wear", "cat_fashion"]
    assert "cat_wedding_dresses" not in onto.needs("int_wedding_guest")  # a near miss: guests don't
    newborn = onto.needs("int_newborn_care")
    assert newborn["cat_diapers"] == 1.0 and newborn["cat_strollers"] == 0.8
    groceries = onto.needs("int_weekly_grocery_shopping")  # NEEDS fresh food (1.0, four leaves)
    assert groceries["cat_dairy_eggs"] == pytest.approx(0.25)
    assert groceries["cat_detergents"] == pytest.approx(0.1)
    facts = set(onto.triples())
    assert ("int_wedding_preparation", "PRECEDES", "int_honeymoon_travel", 0.9) in facts
    assert ("int_pregnancy", "PRECEDES", "int_newborn_care", 1.0) in facts
    assert ("int_nursery_setup", "CO_OCCURS_WITH", "int_pregnancy", 0.9) in facts
    assert ("cat_baby_feeding_tracker", "SERVES", "int_newborn_care", 0.5) in facts
    assert ("cat_running_shoes", "SUBCATEGORY_OF", "cat_sports_shoes", 1.0) in facts
    domain = {c: onto.categories[c].domain for c in onto.categories}
    assert domain["cat_wedding_photography"] == "local_services"
    assert domain["cat_travel_rewards_cards"] == domain["cat_travel_insurance"] == "finance"
    assert domain["cat_long_haul_flights"] == domain["cat_beach_resorts"] == "travel"
    assert domain["cat_baby_feeding_tracker"] == domain["cat_moving_checklist"] == "mini_apps"
    assert domain["cat_pain_relievers"] == domain["cat_dental_clinics"] == "health"


def test_tree_navigation(onto: Ontology) -> None:
    assert onto.ancestors("cat_running_shoes") == ["cat_sports_shoes", "cat_footwear", "cat_fashion"]
    assert onto.categories["cat_running_shoes"].level == 3
    assert onto.children("cat_sports_shoes") == [
        "cat_running_shoes",
        "cat_training_shoes",
        "cat_football_boots",
    ]
    assert onto.leaves("cat_mortgages") == [
        "cat_first_time_buyer_mortgages",
        "cat_remortgages",
        "cat_buy_to_let_mortgages",
    ]
    assert onto.leaves("cat_diapers") == ["cat_diapers"]
    assert onto.subtree("cat_mortgages")[0] == "cat_mortgages" and len(onto.subtree("cat_mortgages")) == 4
    n_edges = len(onto.categories) - sum(c.parent is None for c in onto.categories.values())
    assert len(onto.relations_of("SUBCATEGORY_OF")) == n_edges
    assert len(onto.triples()) == len(onto.relations) + n_edges
    with pytest.raises(InputError, match="unknown category 'cat_nope'"):
        onto.ancestors("cat_nope")


# --- a tiny hand-made ontology --------------------------------------------------------------------


def _tiny() -> dict[str, Any]:
    def cat(cid: str, parent: str | None) -> dict[str, Any]:
        return {"id": cid, "name": cid[4:], "parent": parent, "domain": "shop", "kind": "product"}

    def rel(head: str, rtype: str, tail: str, weight: float) -> dict[str, Any]:
        return {"head": head, "type": rtype, "tail": tail, "weight": weight}

    def intent(iid: str) -> dict[str, Any]:
        return {"id": iid, "name": iid[4:], "description": "d", "group": "household",
                "prevalence": 0.5, "duration_days": 10}  # fmt: skip

    return {
        "VERSION": "1",
        "domains.json": [{"id": "shop", "name": "Shop", "description": "d", "cold_start": False}],
        "categories.json": [
            cat("cat_root", None),
            cat("cat_a", "cat_root"),
            cat("cat_b", "cat_root"),
            cat("cat_a1", "cat_a"),
            cat("cat_a2", "cat_a"),
            cat("cat_b1", "cat_b"),
        ],
        "intents.json": [intent("int_x"), intent("int_y")],
        "relations.json": [
            rel("int_x", "NEEDS", "cat_a", 0.6),
            rel("int_x", "NEEDS", "cat_a1", 0.5),
            rel("int_x", "NEEDS", "cat_root", 0.9),
            rel("int_y", "NEEDS", "cat_a1", 0.4),
            rel("int_y", "NEEDS", "cat_a2", 0.4),
            rel("int_y", "NEEDS", "cat_b1", 0.4),
            rel("int_x", "CO_OCCURS_WITH", "int_y", 0.5),
            rel("int_x", "PRECEDES", "int_y", 0.7),
            rel("cat_b1", "SERVES", "int_y", 0.5),
        ],
        "brands.json": [{"id": "brand_acme", "name": "Acme", "categories": ["cat_a"], "tier": "mid"}],
        "vocabulary.json": {
            "adjectives": {"cat_root": ["nice"]},
            "materials_or_features": {"cat_root": ["a lid"]},
            "query_templates": ["cheap {category}"],
        },
    }


def _write(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        text = body if name == "VERSION" else json.dumps(body, indent=1)
        (directory / name).write_text(text)
    return directory


def test_needs_spreads_mid_level_weight_over_leaves_and_sums(tmp_path: Path) -> None:
    o = load_ontology(_write(tmp_path, _tiny()), TINY)
    # cat_a (0.6) -> 0.3 per leaf; cat_a1 (0.5) direct; cat_root (0.9) -> 0.3 to each of 3 leaves
    assert o.needs("int_x") == pytest.approx({"cat_a1": 1.1, "cat_a2": 0.6, "cat_b1": 0.3})
    assert o.needs("int_y") == pytest.approx({"cat_a1": 0.4, "cat_a2": 0.4, "cat_b1": 0.4})
    assert o.categories["cat_a1"].level == 2 and o.categories["cat_root"].level == 0
    assert [r.tail for r in o.relations_of("SERVES")] == ["int_y"]


def _dup_category(f: dict[str, Any]) -> None:
    f["categories.json"].append({**f["categories.json"][3], "name": "other"})


def _dup_intent_name(f: dict[str, Any]) -> None:
    f["intents.json"][1]["name"] = "x"


def _unknown_parent(f: dict[str, Any]) -> None:
    f["categories.json"][5]["parent"] = "cat_missing"


def _cycle(f: dict[str, Any]) -> None:
    f["categories.json"][1]["parent"] = "cat_a1"


def _intent_needs_brand(f: dict[str, Any]) -> None:
    f["relations.json"][2] = {"head": "int_x", "type": "NEEDS", "tail": "brand_acme", "weight": 0.5}


def _heavy(f: dict[str, Any]) -> None:
    f["relations.json"][4]["weight"] = 1.5


def _unknown_type(f: dict[str, Any]) -> None:
    f["relations.json"][6]["type"] = "LIKES"


def _precedes_cycle(f: dict[str, Any]) -> None:
    f["relations.json"].append({"head": "int_y", "type": "PRECEDES", "tail": "int_x", "weight": 0.2})


def _too_few_needs(f: dict[str, Any]) -> None:
    del f["relations.json"][5]


def _unknown_domain(f: dict[str, Any]) -> None:
    f["categories.json"][2]["domain"] = "space"


def _unknown_tail(f: dict[str, Any]) -> None:
    f["relations.json"][8]["head"] = "cat_zz"


def _subcategory_listed(f: dict[str, Any]) -> None:
    f["relations.json"].append({"head": "cat_a", "type": "SUBCATEGORY_OF", "tail": "cat_root", "weight": 1})


def _co_occurs_reversed(f: dict[str, Any]) -> None:
    f["relations.json"][6].update(head="int_y", tail="int_x")


def _too_shallow(f: dict[str, Any]) -> None:
    f["categories.json"] = [c for c in f["categories.json"] if c["id"] in ("cat_root", "cat_a", "cat_b")]
    f["relations.json"] = [r for r in f["relations.json"] if r["type"] != "SERVES"]
    for r in f["relations.json"]:
        r["tail"] = {"cat_a1": "cat_a", "cat_a2": "cat_b", "cat_b1": "cat_root"}.get(r["tail"], r["tail"])


BROKEN: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_dup_category, r"categories.json entry 6: duplicate id 'cat_a1' \(first at entry 3\)"),
    (_dup_intent_name, r"intents.json entry 1: duplicate name 'x'"),
    (_unknown_parent, r"categories.json entry 5: unknown parent 'cat_missing'"),
    (_cycle, r"categories.json entry \d: '\w+' is in a parent cycle"),
    (_intent_needs_brand, r"relations.json entry 2: Intent -\[:NEEDS\]-> Brand is not allowed"),
    (_heavy, r"relations.json entry 4: weight 1.5 is outside \(0, 1\]"),
    (_unknown_type, r"relations.json entry 6: relation type 'LIKES' is not one of"),
    (_precedes_cycle, r"relations.json entry \d+: PRECEDES .* closes a cycle"),
    (_too_few_needs, r"intents.json entry 1: 'int_y' has 2 NEEDS"),
    (_unknown_domain, r"categories.json entry 2: unknown domain 'space'"),
    (_unknown_tail, r"relations.json entry 8: unknown category 'cat_zz'"),
    (_subcategory_listed, r"relations.json entry 9: SUBCATEGORY_OF is derived"),
    (_co_occurs_reversed, r"relations.json entry 6: CO_OCCURS_WITH is listed once with head < tail"),
    (_too_shallow, r"categories.json: the tree has 2 levels; at least 3 needed"),
]


@pytest.mark.parametrize(("breaker", "message"), BROKEN, ids=[b.__name__.strip("_") for b, _ in BROKEN])
def test_broken_files_are_rejected_naming_file_and_entry(
    tmp_path: Path, breaker: Callable[[dict[str, Any]], None], message: str
) -> None:
    files = _tiny()
    breaker(files)
    with pytest.raises(InputError, match=message):
        load_ontology(_write(tmp_path, files), TINY)


def test_minimum_counts_are_enforced(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"intents.json: 2 entries; the ontology needs at least 150"):
        load_ontology(_write(tmp_path, _tiny()))


# --- content hash ---------------------------------------------------------------------------------


def test_content_hash_is_stable_and_tracks_changes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(DEFAULT_DIR, first)
    shutil.copytree(DEFAULT_DIR, second)
    digest = load_ontology(first).content_hash()
    assert len(digest) == 64 and load_ontology(second).content_hash() == digest
    assert load_ontology(DEFAULT_DIR).content_hash() == digest
    intents = json.loads((second / "intents.json").read_text())
    (second / "intents.json").write_text(json.dumps(intents, indent=4))  # formatting only
    assert load_ontology(second).content_hash() == digest
    intents[0]["prevalence"] = 0.5
    (second / "intents.json").write_text(json.dumps(intents))
    changed = load_ontology(second)
    assert changed.content_hash() != digest and changed.intents[intents[0]["id"]].prevalence == 0.5
