"""The singular-value spectrum of a weight update ΔW (MultiLoRA's analysis, arXiv 2311.11501 §3).

For ΔW with singular values σ₁ ≥ σ₂ ≥ … ≥ 0:

- normalised spectrum σᵢ / σ₁;
- top-k energy share E_k = Σ_{i≤k} σᵢ² / Σᵢ σᵢ² (LoRA's ΔW is dominated by its top few
  singular vectors; MultiLoRA's is claimed to be flatter, closer to full fine-tuning);
- effective rank exp(H(p)), pᵢ = σᵢ / Σⱼ σⱼ (Roy & Vetterli, 2007).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from graph import files


def singular_values(delta: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = torch.linalg.svdvals(delta.detach().double())
    return out


def energy_share(sigma: torch.Tensor, k: int) -> float:
    energy = sigma.pow(2)
    total = float(energy.sum())
    return float(energy[:k].sum()) / total if total > 0 else 0.0


def effective_rank(sigma: torch.Tensor) -> float:
    total = float(sigma.sum())
    if total <= 0:
        return 0.0
    p = sigma[sigma > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def spectrum_table(
    deltas: Mapping[str, Sequence[torch.Tensor]], ks: Sequence[int] = (1, 2, 4, 8)
) -> pd.DataFrame:
    """One row per method: mean over its layers of E_k for each k, and of the effective rank."""
    rows = []
    for method, mats in deltas.items():
        sigmas = [singular_values(d) for d in mats]
        row: dict[str, float | str] = {"method": method, "layers": len(sigmas)}
        for k in ks:
            row[f"top{k}_energy"] = round(sum(energy_share(s, k) for s in sigmas) / max(1, len(sigmas)), 3)
        row["effective_rank"] = round(sum(effective_rank(s) for s in sigmas) / max(1, len(sigmas)), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_spectra(deltas: Mapping[str, Sequence[torch.Tensor]], out: Path, top: int = 32) -> Path:
    """Mean normalised spectrum σᵢ/σ₁ (first ``top`` values, log scale) per method, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for method, mats in deltas.items():
        curves = [(s / s[0])[:top] for s in (singular_values(d) for d in mats) if float(s[0]) > 0]
        if curves:
            n = min(len(c) for c in curves)
            mean = torch.stack([c[:n] for c in curves]).mean(0)
            ax.plot(range(1, n + 1), mean.clamp(min=1e-6).tolist(), marker="o", markersize=3, label=method)
    ax.set_yscale("log")
    ax.set_xlabel("singular value index i")
    ax.set_ylabel("σᵢ / σ₁ (mean over adapted layers)")
    ax.set_title("Spectrum of ΔW")
    ax.legend()
    fig.tight_layout()
    files.write_file(out, lambda tmp: fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png"))
    return out
