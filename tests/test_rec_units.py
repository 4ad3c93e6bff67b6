"""PEACE's parts on hand-sized inputs: the prototype loss, the attention, the metrics, the ablations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
import torch

from gnn.rec.attention import PrototypeAttention
from gnn.rec.data import RecData
from gnn.rec.evaluate import evaluate_domain
from gnn.rec.metrics import metrics_from_ranks, ranks, user_average
from gnn.rec.peace import (
    Peace,
    PeaceConfig,
    PeaceNet,
    batch_loss,
    build_history,
    localise,
    refresh_prototypes,
    score,
)
from gnn.rec.prototypes import kmeans, prototype_loss
from gnn.rec.serve import online_scores


def tiny_data() -> RecData:
    """4 users, 6 items in 2 domains, 4 entities (3 categories + 1 brand), no KG beyond the tree."""
    rng = np.random.default_rng(0)
    return RecData(
        user_ids=["u0", "u1", "u2", "u3"],
        item_ids=[f"i{i}" for i in range(6)],
        domains=["a", "b"],
        item_domain=np.array([0, 0, 0, 1, 1, 1]),
        fit_user=np.array([0, 0, 1, 1, 2, 2, 3, 0]),
        fit_item=np.array([0, 1, 1, 2, 0, 3, 4, 3]),
        fit_ts=np.arange(8),
        test_user=np.array([0, 1, 2]),
        test_item=np.array([2, 4, 5]),
        item_x=rng.normal(size=(6, 5)).astype(np.float32),
        entity_ids=["Category:root", "Category:x", "Category:y", "Brand:b"],
        entity_x=rng.normal(size=(4, 5)).astype(np.float32),
        item_entity=np.array([[0, 0, 1, 1, 2, 3, 3, 4, 5], [1, 0, 1, 0, 1, 2, 0, 2, 3]]),
        kg_edges=np.array([[1, 2], [0, 0], [0, 0]]),
        relations=["SUBCATEGORY_OF", "NEEDS", "SERVES", "CO_OCCURS_WITH", "PRECEDES"],
    )


SMALL = PeaceConfig(
    dim=8, interests=2, prototypes=3, pretrain_epochs=2, finetune_epochs=2, batch_size=4, negatives=2
)


def test_prototype_loss_matches_a_hand_computed_case() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised: e1 = (1, 0), e2 = (0, 1)
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    # e1 · p = (1, 0, -1) → logits (2, 0, -2); e2 · p = (0, 1, 0) → logits (0, 2, 0)
    l1 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    l2 = -math.log(math.exp(2) / (1 + math.exp(2) + 1))
    got = prototype_loss(emb, protos, torch.tensor([0, 1]), tau)
    assert got.item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
    wrong = prototype_loss(emb, protos, torch.tensor([2, 0]), tau)  # pulled to the wrong prototypes
    assert wrong.item() > got.item()


def test_kmeans_finds_two_obvious_clusters_and_is_seeded() -> None:
    x = torch.tensor([[1.0, 0.05], [1.0, -0.05], [0.05, 1.0], [-0.05, 1.0]])
    centres, assign = kmeans(x, 2, seed=3)
    assert assign[0] == assign[1] and assign[2] == assign[3] and assign[0] != assign[2]
    again, _ = kmeans(x, 2, seed=3)
    assert torch.equal(centres, again)


def test_attention_shapes_softmax_and_residual() -> None:
    torch.manual_seed(0)
    att = PrototypeAttention(4)
    z, protos = torch.randn(3, 2, 4), torch.randn(5, 4)
    w = att.weights(z, protos)
    assert w.shape == (3, 2, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 2))
    out = att(z, protos)
    assert out.shape == z.shape
    expected = z + (w @ protos) @ att.o.weight.T
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("attention", [True, False])
def test_rec_gradient_reaches_prototypes_only_through_the_attention(attention: bool) -> None:
    data = tiny_data()
    net = PeaceNet(replace(SMALL, use_proto_attention=attention, lambda_proto=0.0), data)
    hist, mask = build_history(data, data.domains, 4)
    users, pos = torch.tensor([0, 1]), torch.tensor([1, 2])
    loss = batch_loss(net, users, pos, torch.tensor([5]), hist, mask, None)  # no proto loss term
    loss.backward()  # type: ignore[no-untyped-call]
    assert net.prototypes is not None
    grad = net.prototypes.grad
    assert (grad is not None and grad.abs().sum() > 0) == attention


def test_online_numpy_scores_equal_the_model_scores() -> None:
    data = tiny_data()
    model = Peace(SMALL)
    model.fit(data, ["b"])
    z, v = model.embed("b")
    net = model.nets["b"]
    assert net.attention is not None and net.prototypes is not None
    arrays = {
        "interests": z.numpy(),
        "items": torch.nn.functional.normalize(v, dim=-1).numpy(),
        "prototypes": net.prototypes.detach().numpy(),
        "wq": net.attention.q.weight.detach().numpy(),
        "wk": net.attention.k.weight.detach().numpy(),
        "wo": net.attention.o.weight.detach().numpy(),
    }
    rows = torch.arange(4)
    expected = model.scores(rows, "b").numpy()
    assert np.allclose(online_scores(arrays, rows.numpy()), expected, atol=1e-5)


def test_score_is_the_max_over_interests_of_the_cosine() -> None:
    z = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])
    v = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    assert torch.allclose(score(z, v), torch.tensor([[1.0, 1 / math.sqrt(2), 0.0]]))


def test_ranks_and_metrics_on_a_hand_ranking() -> None:
    # user 0: positive 0.5 among candidates (0.9, 0.5, 0.1, 0.7): 2 above, 1 tie → rank 2.5
    r = ranks(
        np.array([0.5, 0.95]), np.array([[0.9, 0.5, 0.1, 0.7], [0.9, 0.5, 0.1, 0.7]]), np.ones((2, 4), bool)
    )
    assert r.tolist() == [2.5, 0.0]
    m = metrics_from_ranks(np.array([0.0, 2.0, 12.0]), np.array([4, 4, 20]))
    assert m["HR@10"].tolist() == [1.0, 1.0, 0.0] and m["HR@20"].tolist() == [1.0, 1.0, 1.0]
    assert m["NDCG@10"].tolist() == pytest.approx([1.0, 1 / math.log2(4), 0.0])
    assert m["NDCG@20"][2] == pytest.approx(1 / math.log2(14))
    assert m["MRR"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 13])
    assert m["AUC"].tolist() == pytest.approx([1.0, 0.5, 1 - 12 / 20])
    avg = user_average(np.array([7, 7, 8]), m)  # per user first: user 7 → (1 + 1/3)/2, user 8 → 1/13
    assert avg["MRR"] == pytest.approx(((1 + 1 / 3) / 2 + 1 / 13) / 2) and avg["users"] == 2


class Fixed:
    """A recommender with fixed scores over domain b's items (i3, i4, i5)."""

    name = "fixed"

    def fit(self, data: RecData, targets: Sequence[str]) -> None: ...

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        return torch.tensor([[0.3, 0.2, 0.1]]).expand(len(users), -1)


def test_evaluator_excludes_known_items_and_ranks_in_the_domain() -> None:
    data = tiny_data()  # test pairs in b: (u1, i4), (u2, i5); u2 already has i3 (fit), u1 has none
    m = evaluate_domain(Fixed(), data, "b")
    # u1: i3 above i4 → rank 1 of 2 negatives (AUC 1/2); u2: i3 excluded, i4 above i5 → rank 1 of 1 (AUC 0)
    assert m["users"] == 2 and m["MRR"] == pytest.approx(0.5) and m["AUC"] == pytest.approx(0.25)


def test_each_ablation_switch_changes_the_model_as_stated() -> None:
    data = tiny_data()
    full = PeaceNet(SMALL, data)
    assert full.entity is not None and full.prototypes is not None and full.attention is not None
    no_proto = PeaceNet(replace(SMALL, use_prototypes=False), data)
    assert no_proto.prototypes is None and no_proto.attention is None
    assert refresh_prototypes(no_proto, torch.arange(6), 0) is None  # and no prototype loss
    no_att = PeaceNet(replace(SMALL, use_proto_attention=False), data)
    assert no_att.prototypes is not None and no_att.attention is None
    z = torch.randn(2, 2, 8)
    assert torch.equal(no_att.enhance(z), z)
    no_graph = PeaceNet(replace(SMALL, use_entity_graph=False), data)
    assert no_graph.entity is None and no_graph.entities() is None and no_graph.use_ids
    single = PeaceNet(replace(SMALL, single_interest=True), data)
    hist, mask = build_history(data, data.domains, 4)
    v = single.items(single.entities())
    assert single.interests(torch.arange(4), hist, mask, v).shape == (4, 1, 8)
    assert full.interests(torch.arange(4), hist, mask, full.items(full.entities())).shape == (4, 2, 8)


def test_history_is_newest_first_and_padded() -> None:
    data = tiny_data()
    hist, mask = build_history(data, ["a", "b"], 2)
    assert hist[0].tolist() == [3, 1]  # u0 fit items 0 (t0), 1 (t1), 3 (t7): newest two
    assert hist[3].tolist() == [4, 6] and mask[3].tolist() == [True, False]
    only_a, _ = build_history(data, ["a"], 2)
    assert only_a[0].tolist() == [1, 0]


def test_batch_local_items_and_history_match_the_full_computation() -> None:
    data = tiny_data()
    net = PeaceNet(SMALL, data)
    ent = net.entities()
    full = net.items(ent)
    rows = torch.tensor([1, 4, 5])
    assert torch.allclose(net.items(ent, rows), full[rows], atol=1e-6)
    assert torch.allclose(net.all_items(chunk=2), full.detach(), atol=1e-6)
    hist, mask = build_history(data, data.domains, 4)
    users = torch.tensor([0, 2])
    rows, local = localise(hist[users], torch.tensor([5]), data.n_items)
    assert 5 in rows.tolist() and rows.tolist() == sorted(set(rows.tolist()))
    z_local = net.interests(users, local, mask[users], net.items(ent, rows))
    z_full = net.interests(users, hist[users], mask[users], full)
    assert torch.allclose(z_local, z_full, atol=1e-6)


def test_lightgcn_csr_propagation_equals_pygs_edge_list_propagation() -> None:
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    from torch_geometric.nn.models import LightGCN

    from gnn.rec.lightgcn import user_item_graph

    rng = np.random.default_rng(0)
    n_users, n_items = 7, 9
    users, cols = rng.integers(0, n_users, 30), rng.integers(0, n_items, 30)
    pairs = np.unique(np.stack([users, cols]), axis=1)
    torch.manual_seed(0)
    model = LightGCN(n_users + n_items, 8, 2, normalize=False)
    u, i = torch.from_numpy(pairs[0]), torch.from_numpy(pairs[1]) + n_users
    edge_index, weight = gcn_norm(
        torch.stack([torch.cat([u, i]), torch.cat([i, u])]), None, n_users + n_items, add_self_loops=False
    )
    expected = model.get_embedding(edge_index, weight)
    got = model.get_embedding(user_item_graph(n_users, n_items, pairs[0], pairs[1]))
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, model.embedding.weight)  # it propagated


def test_negatives_are_never_a_users_fit_items_and_are_seeded() -> None:
    from gnn.rec.baselines import NegativeSampler

    rng = np.random.default_rng(1)
    n_users, n_items = 20, 12
    pairs = np.unique(np.stack([rng.integers(0, n_users, 150), rng.integers(0, n_items, 150)]), axis=1)
    sampler = NegativeSampler(pairs[0], pairs[1], n_items)
    fit = set(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True))
    users = torch.from_numpy(np.repeat(np.arange(n_users), 50))
    assert sampler.known(torch.from_numpy(pairs[0]), torch.from_numpy(pairs[1])).all()
    neg = sampler(users, torch.Generator().manual_seed(0))
    drawn = list(zip(users.tolist(), neg.tolist(), strict=True))
    full = {u for u in range(n_users) if sum((u, i) in fit for i in range(n_items)) == n_items}
    assert not [p for p in drawn if p in fit and p[0] not in full]  # a hit is redrawn
    assert torch.equal(neg, sampler(users, torch.Generator().manual_seed(0)))
    assert len(set(neg.tolist())) > 1
    empty = NegativeSampler(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 5)
    assert not empty.known(torch.tensor([0]), torch.tensor([1])).any()
