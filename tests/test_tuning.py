"""LoRA / MultiLoRA / spectrum math: shapes, identity at initialisation, where gradients flow."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mining.tuning.lora import (
    ADAPTERS,
    AdapterSpec,
    LoRALinear,
    adapters,
    build,
    inject,
    merge,
    trainable_parameters,
)
from mining.tuning.multilora import MultiLoRALinear
from mining.tuning.spectrum import effective_rank, energy_share, singular_values, spectrum_table


def _linear(seed: int = 0, d_in: int = 6, d_out: int = 5) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out)


def test_lora_starts_as_identity_and_only_b_gets_gradient_at_step_0() -> None:
    base = _linear()
    x = torch.randn(3, 6)
    expected = base(x).detach()
    lora = LoRALinear(base, r=2, alpha=4.0)
    assert lora.lora_A.shape == (2, 6) and lora.lora_B.shape == (5, 2) and lora.scaling == 2.0
    assert torch.equal(lora.delta_weight(), torch.zeros(5, 6))
    out = lora(x)
    assert torch.allclose(out, expected)
    out.sum().backward()
    assert base.weight.grad is None and base.bias.grad is None  # frozen
    assert lora.lora_A.grad is not None and torch.count_nonzero(lora.lora_A.grad) == 0  # B = 0
    assert lora.lora_B.grad is not None and torch.count_nonzero(lora.lora_B.grad) > 0


def test_lora_forward_is_w0_plus_scaled_ba_and_merges() -> None:
    lora = LoRALinear(_linear(), r=2, alpha=4.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(4, 6)
    delta = 2.0 * lora.lora_B @ lora.lora_A
    assert torch.allclose(lora.delta_weight(), delta)
    assert torch.allclose(lora(x), x @ (lora.base.weight + delta).T + lora.base.bias, atol=1e-6)
    assert torch.allclose(lora.merged()(x), lora(x), atol=1e-6)


@pytest.mark.parametrize("scale", ["module", "channel"])
def test_multilora_starts_as_identity_with_nonzero_b_and_only_scales_learn_at_step_0(scale: str) -> None:
    base = _linear()
    x = torch.randn(3, 6)
    expected = base(x).detach()
    m = MultiLoRALinear(base, n=3, r=2, alpha=4.0, scale=scale)  # type: ignore[arg-type]
    assert m.lora_A.shape == (3, 2, 6) and m.lora_B.shape == (3, 5, 2)
    assert m.scales.shape == ((3, 1) if scale == "module" else (3, 5))
    assert torch.count_nonzero(m.lora_B) > 0  # Kaiming-uniform, not zero (the paper's change)
    bound = 1 / math.sqrt(2)  # kaiming_uniform(a=√5) on fan_in = r = 2
    assert float(m.lora_B.detach().abs().max()) <= bound
    assert torch.equal(m.delta_weight(), torch.zeros(5, 6))
    out = m(x)
    assert torch.allclose(out, expected)
    out.sum().backward()
    assert base.weight.grad is None
    assert m.lora_A.grad is not None and m.lora_B.grad is not None and m.scales.grad is not None
    assert torch.count_nonzero(m.lora_A.grad) == 0 and torch.count_nonzero(m.lora_B.grad) == 0
    assert torch.count_nonzero(m.scales.grad) > 0


def test_multilora_delta_is_the_scaled_sum_of_its_modules_and_merges() -> None:
    m = MultiLoRALinear(_linear(), n=3, r=2, alpha=4.0, scale="channel")
    with torch.no_grad():
        m.scales.normal_()
    manual = sum(2.0 * torch.diag(m.scales[i]) @ m.lora_B[i] @ m.lora_A[i] for i in range(3))
    assert isinstance(manual, torch.Tensor)
    assert torch.allclose(m.delta_weight(), manual, atol=1e-6)
    x = torch.randn(2, 4, 6)  # extra leading dims work
    assert torch.allclose(m(x), x @ (m.base.weight + manual).T + m.base.bias, atol=1e-5)
    assert torch.allclose(m.merged()(x), m(x), atol=1e-5)


def test_equal_budget_multilora_costs_only_the_scales_more_than_lora() -> None:
    lora = LoRALinear(_linear(), r=8)
    multi = MultiLoRALinear(_linear(), n=4, r=2)
    lora_n = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    multi_n = sum(p.numel() for p in multi.parameters() if p.requires_grad)
    assert lora_n == 8 * (6 + 5) and multi_n == lora_n + 4


def test_inject_into_a_tiny_bert_keeps_its_output_and_freezes_the_base() -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
        )
    )
    bert.train(False)
    ids = torch.randint(0, 50, (2, 7))
    before = bert(input_ids=ids).last_hidden_state.detach()
    names = inject(bert, AdapterSpec("multilora", rank=2, alpha=4.0, n=2))
    assert len(names) == 4 and len(adapters(bert)) == 4
    assert trainable_parameters(bert) == 4 * (2 * 2 * (16 + 16) + 2)
    after = bert(input_ids=ids).last_hidden_state
    assert torch.allclose(before, after, atol=1e-6)
    after.sum().backward()
    frozen = [p for n, p in bert.named_parameters() if "lora_" not in n and "scales" not in n]
    assert frozen and all(p.grad is None for p in frozen)
    merge(bert)
    assert not adapters(bert)
    assert torch.allclose(bert(input_ids=ids).last_hidden_state, before, atol=1e-6)
    with pytest.raises(ValueError):
        inject(bert, AdapterSpec("lora", targets=("nothing_here",)))


def test_spectrum_metrics_on_hand_computed_cases() -> None:
    delta = torch.diag(torch.tensor([3.0, 4.0, 0.0]))
    sigma = singular_values(delta)
    assert sigma.tolist() == pytest.approx([4.0, 3.0, 0.0])
    assert energy_share(sigma, 1) == pytest.approx(16 / 25)
    assert energy_share(sigma, 2) == pytest.approx(1.0)
    assert effective_rank(singular_values(torch.eye(4))) == pytest.approx(4.0)
    assert effective_rank(singular_values(torch.zeros(3, 3))) == 0.0
    table = spectrum_table({"rank-1": [torch.outer(torch.ones(4), torch.ones(4))], "flat": [torch.eye(4)]})
    assert table.set_index("method").loc["rank-1", "top1_energy"] == pytest.approx(1.0)
    assert table.set_index("method").loc["flat", "top1_energy"] == pytest.approx(0.25)


def test_adapter_seeds_are_summarised_as_mean_and_std_per_method() -> None:
    import pandas as pd

    from mining.tuning.compare import mean_std

    table = pd.DataFrame(
        {
            "method": ["lora", "multilora", "lora", "multilora"],
            "expansion_f1": [0.2, 0.1, 0.4, 0.3],
            "params": [8, 9, 8, 9],
            "seed": [0, 0, 1, 1],
        }
    )
    out = mean_std(table, "method")
    assert list(out["method"]) == ["lora", "multilora"] and "seed" not in out.columns
    assert out["expansion_f1"].tolist() == ["0.300 ± 0.141", "0.200 ± 0.141"]  # std with ddof = 1
    assert out["params"].tolist() == ["8", "9"]  # the same in every seed: no "± 0"


def test_one_adapter_family_builds_every_registered_method() -> None:
    from graph.errors import InputError
    from mining.privatelora.adapter import PrivateLoRALinear

    base = _linear()
    built = {
        m: build(AdapterSpec(m, rank=2, n=2, seed=1), base) for m in ("lora", "multilora", "privatelora")
    }
    assert {"lora", "multilora", "privatelora"} <= set(ADAPTERS)
    assert isinstance(built["lora"], LoRALinear) and isinstance(built["privatelora"], PrivateLoRALinear)
    x = torch.randn(3, base.in_features)
    for adapter in built.values():  # every member starts as the base model and merges like LoRA
        assert torch.allclose(adapter(x), base(x)) and torch.equal(adapter.merged().weight, base.weight)
    # a seeded spec draws the same factors for the same adapter index, another for the next one
    again = build(AdapterSpec("lora", rank=2, seed=1), _linear())
    other = build(AdapterSpec("lora", rank=2, seed=1), _linear(), index=1)
    assert isinstance(again, LoRALinear) and isinstance(other, LoRALinear)
    assert torch.equal(again.lora_A, built["lora"].lora_A) and not torch.equal(other.lora_A, again.lora_A)
    with pytest.raises(InputError, match="unknown adapter 'dora'"):
        build(AdapterSpec("dora"), base)
