"""PrivateLoRA: the adapter's math, the wire format, and the two-process split on a tiny BERT."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import typer
from torch import nn

from mining.privatelora.adapter import AdapterConfig, PrivateLoRALinear, attach, trainable
from mining.privatelora.backbone import BackboneSpec, Classifier, make_head
from mining.privatelora.cloud import HIDDEN, LOWRANK
from mining.privatelora.device import Device, cloud_process
from mining.privatelora.task import judgement_examples, split_by_head
from mining.privatelora.wire import HEADER, MID, Channel, Network, decode, encode, frame_size
from mining.tuning.lora import LoRALinear

torch.set_num_threads(1)
TINY = BackboneSpec(kind="tiny", seed=3)
RANK = 4


def test_adapter_shapes_and_zero_start() -> None:
    base = nn.Linear(8, 6)
    a = PrivateLoRALinear(base, rank=3, seed=0, index=0)
    assert a.A.shape == (3, 8) and a.B.shape == (6, 3) and a.M.shape == (3, 3)
    assert torch.count_nonzero(a.delta_weight()) == 0
    x = torch.randn(5, 8)
    assert torch.equal(a(x), base(x))
    with torch.no_grad():
        a.M.copy_(torch.randn(3, 3))
    assert torch.allclose(a(x) - base(x), x @ a.delta_weight().T, atol=1e-6)


def test_lora_starts_at_zero_and_trains_both_factors() -> None:
    lora = LoRALinear(nn.Linear(8, 6), r=2, alpha=4.0, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(lora.delta_weight()) == 0 and lora.scaling == 2.0
    assert {id(p) for p in trainable(lora)} == {id(lora.lora_A), id(lora.lora_B)}


def test_gradients_reach_only_m_and_the_head() -> None:
    model = Classifier(TINY, AdapterConfig("privatelora", RANK), head_seed=0)
    ms = [a.M for a in model.private()]
    assert {id(p) for p in trainable(model)} == {id(p) for p in [*ms, *model.head.parameters()]}
    ids, mask = torch.randint(1, 100, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    nn.functional.cross_entropy(model(ids, mask), torch.tensor([0, 1])).backward()  # type: ignore[no-untyped-call]
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in ms)  # M learns from M = 0
    frozen = [p for p in model.encoder.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)
    assert all(not a.A.requires_grad and not a.B.requires_grad for a in model.private())


def test_attach_orders_adapters_layer_by_layer() -> None:
    model = Classifier(TINY, AdapterConfig("none"), head_seed=0).encoder
    adapters = attach(model, AdapterConfig("lora", RANK, ("query", "value")))
    assert len(adapters) == 4 and model.encoder.layer[1].attention.self.value is adapters[3]  # type: ignore[union-attr,index]


def test_cloud_can_reconstruct_m_from_what_crosses() -> None:
    """A limitation, documented: the cloud sees z = A·x and u = M·z, so r tokens reveal M."""
    a = PrivateLoRALinear(nn.Linear(16, 16), rank=4, seed=0, index=0)
    with torch.no_grad():
        a.M.copy_(torch.randn(4, 4))
        z = torch.randn(8, 16) @ a.A.T  # what the cloud sends for 8 tokens
        u = z @ a.M.T  # what the device answers
    m_hat = torch.linalg.lstsq(z, u).solution.T
    assert torch.allclose(m_hat, a.M, atol=1e-4)


def test_frame_bytes_by_hand() -> None:
    z = torch.arange(20, dtype=torch.float32).reshape(5, 4)
    frame = encode(MID, [z], index=3, call=7)
    # 12-byte header, then dtype + ndim (2) + two u32 dims (8) + 5·4 float32 values (80)
    assert HEADER.size == 12 and len(frame) == 12 + 2 + 8 + 80 == frame_size([(5, 4)])
    msg = decode(frame[4:])
    assert (msg.kind, msg.index, msg.call) == (MID, 3, 7) and torch.equal(msg.tensors[0], z)
    assert len(encode(MID, [z], wire_bits=16)) == 12 + 2 + 8 + 40


def test_network_delay() -> None:
    assert Network(1.0, 10.0).delay(1250) == pytest.approx(0.005 + 0.010)
    assert Network().delay(10**9) == 0.0


def test_task_negatives_are_false_and_split_is_by_head() -> None:
    examples = judgement_examples(seed=0)
    true = {(e.head, e.relation, e.tail) for e in examples if e.label == 1}
    assert all((e.head, e.relation, e.tail) not in true for e in examples if e.label == 0)
    assert sum(e.label for e in examples) * 2 == pytest.approx(len(examples), rel=0.02)
    split = split_by_head(examples, 0.2, seed=0)
    assert not {e.head for e in split.train} & {e.head for e in split.test}


def test_privatelora_joins_the_lightpair_group_whatever_the_module_order() -> None:
    from typer.main import get_command

    from mokg.commands import MODULES, register_all

    for modules in (MODULES, tuple(reversed(MODULES)), ("privatelora", "lightpair")):
        app, eval_app = typer.Typer(), typer.Typer()
        app.add_typer(eval_app, name="eval")
        register_all(app, eval_app, modules)
        lightpair = get_command(app).commands["lightpair"]  # type: ignore[attr-defined]
        assert {"privatelora", "distill", "align"} <= set(lightpair.commands)


# --- the two real processes (tiny BERT, real socket, real subprocess) ---


@pytest.fixture(scope="module")
def channel() -> Iterator[Channel]:
    with cloud_process({"backbone": TINY.to_json(), "rank": RANK, "targets": ["query", "value"]}) as ch:
        yield ch
        ch.send(10, [])  # CLOSE


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 100, (3, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 6, dtype=torch.long)
    mask[0, 4:] = 0
    mask[2, 2:] = 0  # lengths 4, 6, 2: 12 real tokens
    return ids, mask, torch.tensor([0, 1, 1])


def _reference(seed: int) -> Classifier:
    ref = Classifier(TINY, AdapterConfig("privatelora", RANK, seed=seed), head_seed=5)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for a in ref.private():
            a.M.copy_(0.1 * torch.randn(RANK, RANK, generator=gen))
    return ref


@pytest.mark.parametrize("mode", [LOWRANK, HIDDEN])
def test_split_equals_single_process(channel: Channel, mode: int) -> None:
    ref = _reference(seed=7)
    ids, mask, y = _batch()
    logits = ref(ids, mask)
    nn.functional.cross_entropy(logits, y).backward()  # type: ignore[no-untyped-call]
    dev = Device(channel, ref.word_embeddings(), len(ref.private()), RANK, make_head(32, 5))
    with torch.no_grad():
        for m, a in zip(dev.M, ref.private(), strict=True):
            m.copy_(a.M)
    dev.setup(7, mode)
    out = dev(ids, mask, train=True)
    dev.backward(nn.functional.cross_entropy(out, y))
    assert torch.allclose(out, logits, atol=1e-5)
    for m, a in zip(dev.M, ref.private(), strict=True):
        assert m.grad is not None and a.M.grad is not None
        assert torch.allclose(m.grad, a.M.grad, atol=1e-6)
    assert torch.allclose(dev.head.weight.grad, ref.head.weight.grad, atol=1e-6)  # type: ignore[arg-type]


def test_bytes_on_the_wire_by_hand(channel: Channel) -> None:
    ref = Classifier(TINY, AdapterConfig("privatelora", RANK), head_seed=0)
    dev = Device(channel, ref.word_embeddings(), 4, RANK, make_head(32, 0))
    ids, mask, y = _batch()
    n, b, d = 12, 3, 32
    for mode, width in ((LOWRANK, RANK), (HIDDEN, d)):
        dev.setup(0, mode)
        channel.reset_counts()
        with torch.no_grad():
            dev(ids, mask)
        up = 12 + (10 + 4 * n * d) + (6 + 4 * b)  # FORWARD: embeddings (n × d) and lengths (b)
        mid = 12 + 10 + 4 * n * width  # one adapter call, each way
        pooled = 12 + 10 + 4 * b * d
        assert dict(channel.sent) == {"forward": up, "mid_out": 4 * mid}
        assert dict(channel.received) == {"mid": 4 * mid, "pooled": pooled}
        channel.reset_counts()
        dev.backward(nn.functional.cross_entropy(dev(ids, mask, train=True), y))
        # layer 0's two adapters need no ∂L/∂z (GRAD_LAST, unanswered), layer 1's two do
        assert channel.sent["backward"] == pooled and channel.sent["grad_z"] == 2 * mid
        assert channel.received["grad"] == channel.received["grad_last"] == 2 * mid
        assert channel.received["done"] == 12


@pytest.mark.slow
def test_split_equals_single_process_on_minilm() -> None:
    from mining.privatelora.backbone import load_tokenizer

    spec, tok = BackboneSpec(), load_tokenizer()
    ref = Classifier(spec, AdapterConfig("privatelora", 8, seed=1), head_seed=0)
    with torch.no_grad():
        for a in ref.private():
            a.M.normal_(0, 0.05)
    enc = tok(
        ["getting engaged needs Engagement rings", "Cruises is a kind of Travel"],
        padding=True,
        return_tensors="pt",
    )
    with cloud_process({"backbone": spec.to_json(), "rank": 8, "targets": ["query", "value"]}) as ch:
        dev = Device(ch, ref.word_embeddings(), 12, 8, make_head(384, 0))
        with torch.no_grad():
            for m, a in zip(dev.M, ref.private(), strict=True):
                m.copy_(a.M)
            dev.setup(1)
            out = dev(enc["input_ids"], enc["attention_mask"])
            want = ref(enc["input_ids"], enc["attention_mask"])
        dev.close()
    assert torch.allclose(out, want, atol=1e-4)
