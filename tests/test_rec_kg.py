"""The recommenders read whatever KG a store holds: a RecBole-style dataset with its own declared
relation types (written here), reached from items through SAME_AS, with and without the KG, and
on the cold_items split (held-out items ranked as ``D:cold``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from gnn.rec.data import COLD_SUFFIX, TREE, RecDataConfig, kg_relations, load_rec_data
from gnn.rec.evaluate import evaluate_domain
from gnn.rec.peace import Peace, PeaceConfig
from graph.schema import SCHEMA
from graph.store import GraphStore, StoreConfig, open_store
from tests.test_recbole import load, write_dataset

N_USERS, N_ITEMS = 30, 24
GENRES = ("Drama", "Comedy", "Action")


def toy_files(seed: int = 0) -> dict[str, str]:
    """Interactions (≥ 4 per user), genres, and a small Freebase-like KG: every linked film has a
    director and a genre entity; directors share a country."""
    rng = np.random.default_rng(seed)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(N_USERS):
        for k, i in enumerate(rng.choice(N_ITEMS, size=int(rng.integers(4, 9)), replace=False)):
            inter.append(f"{u}\t{i}\t{int(rng.integers(1, 6))}\t{1000 + 10 * u + k}")
    item = ["item_id:token\tmovie_title:token_seq\tclass:token_seq"]
    item += [f"{i}\tFilm {i}\t{GENRES[i % 3]}" for i in range(N_ITEMS)]
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    link = ["item_id:token\tentity_id:token"]
    for i in range(N_ITEMS - 4):  # the last four films are not linked
        link.append(f"{i}\tm.f{i}")
        kg.append(f"m.f{i}\tfilm.film.director\tm.d{i % 5}")
        kg.append(f"m.f{i}\tfilm.film.genre\tm.g{i % 3}")
    kg += [f"m.d{d}\tpeople.person.nationality\tm.c{d % 2}" for d in range(5)]
    return {
        "inter": "\n".join(inter) + "\n",
        "item": "\n".join(item) + "\n",
        "kg": "\n".join(kg) + "\n",
        "link": "\n".join(link) + "\n",
    }


KG_TYPES = ["FILM_FILM_DIRECTOR", "FILM_FILM_GENRE", "PEOPLE_PERSON_NATIONALITY"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    root = tmp_path_factory.mktemp("toy")
    with open_store(StoreConfig(path=root / "g"), create=True) as store:
        load(store, write_dataset(root, "toy", **toy_files()))
        yield store


def test_kg_relations_are_the_schemas_entity_relations_declared_ones_included(toy: GraphStore) -> None:
    own = kg_relations(SCHEMA)
    assert TREE not in own and {"NEEDS", "SERVES", "CO_OCCURS_WITH", "PRECEDES"} <= set(own)
    assert not {"BELONGS_TO", "MADE_BY", "INTERACTED", "SAME_AS"} & set(own)  # item/user edges
    assert kg_relations(toy.schema) == own + KG_TYPES


def test_the_loaded_kg_reaches_items_through_same_as(toy: GraphStore) -> None:
    data = load_rec_data(toy, RecDataConfig(split="leave_last_out", features=False))
    assert data.relations == [TREE, *kg_relations(toy.schema)]
    n = data.catalogue_entities()
    assert data.entity_ids[:n] == [f"Category:toy:class:{g}" for g in sorted(GENRES)]
    linked = data.entity_ids[n:]
    assert len(linked) == 20 + 5 + 3 + 2 and all(e.startswith("Entity:toy:e:m.") for e in linked)
    named = [(data.entity_ids[h], data.relations[r], data.entity_ids[t]) for h, t, r in data.kg_edges.T]
    assert len(named) == 20 * 2 + 5 == len(set(named))
    assert ("Entity:toy:e:m.f7", "FILM_FILM_DIRECTOR", "Entity:toy:e:m.d2") in named
    assert ("Entity:toy:e:m.d3", "PEOPLE_PERSON_NATIONALITY", "Entity:toy:e:m.c1") in named
    links = {(data.item_ids[i], data.entity_ids[e]) for i, e in data.item_entity.T}
    assert ("toy:i:7", "Entity:toy:e:m.f7") in links and ("toy:i:7", "Category:toy:class:Comedy") in links
    assert not any(i == "toy:i:22" and e.startswith("Entity:") for i, e in links)  # not linked
    assert data.entity_x.shape[0] == data.n_entities

    bare = load_rec_data(toy, RecDataConfig(split="leave_last_out", features=False, kg=False))
    assert bare.relations == [TREE] and bare.entity_ids == data.entity_ids[:n]
    dropped = data.without_kg()
    assert dropped.entity_ids == bare.entity_ids and dropped.relations == [TREE]
    assert np.array_equal(dropped.item_entity, bare.item_entity)
    assert np.array_equal(dropped.kg_edges, bare.kg_edges)


def test_cold_items_rank_held_out_items_in_their_own_catalogue(toy: GraphStore) -> None:
    data = load_rec_data(toy, RecDataConfig(split="cold_items", cold_share=0.25, features=False))
    cold = f"toy{COLD_SUFFIX}"
    assert data.domains == ["toy", cold]
    held = data.domain_items(cold)
    assert len(held) == N_ITEMS // 4
    assert not np.isin(data.fit_item, held).any()  # no fit row touches a held-out item
    users, items = data.test_in(cold)
    assert len(users) and np.isin(items, held).all() and len(data.test_in("toy")[0]) == 0


@pytest.mark.parametrize("split", ["leave_last_out", "cold_items"])
def test_peace_fits_one_domain_data_with_a_declared_kg(toy: GraphStore, split: str) -> None:
    data = load_rec_data(toy, RecDataConfig(split=split, features=False))  # type: ignore[arg-type]
    target = "toy" if split == "leave_last_out" else f"toy{COLD_SUFFIX}"
    cfg = PeaceConfig(dim=16, prototypes=4, pretrain_epochs=1, finetune_epochs=1, negatives=8, seed=0)
    model = Peace(cfg)
    model.fit(data, [target])
    assert model.losses["pretrain"] and np.isfinite(model.losses["pretrain"]).all()
    users = torch.arange(5)
    s = model.scores(users, target)
    assert s.shape == (5, len(data.domain_items(target))) and torch.isfinite(s).all()
    assert s.std(dim=1).min() > 0  # held-out items are told apart by their entities, not tied
    metrics = evaluate_domain(model, data, target)
    assert metrics["users"] > 0 and 0 <= metrics["NDCG@10"] <= 1


def test_linked_init_rescales_only_the_loaded_kgs_entities(toy: GraphStore) -> None:
    from gnn.rec.peace import PeaceNet

    data = load_rec_data(toy, RecDataConfig(split="leave_last_out", features=False))
    n = data.catalogue_entities()
    nets = {}
    for init in (0.1, 0.0):
        torch.manual_seed(0)
        nets[init] = PeaceNet(PeaceConfig(dim=8, linked_init=init), data)
    default, zero = (nets[i].entity.emb.weight for i in (0.1, 0.0))  # type: ignore[union-attr]
    assert torch.equal(default[:n], zero[:n]) and default[n:].abs().sum() > 0
    assert not zero[n:].any()
