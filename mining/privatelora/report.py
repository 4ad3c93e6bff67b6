"""The one results table of ``mokg lightpair privatelora``: (what, system, value) rows.

Traffic reduction is reported two ways: on the whole wire (including the one-off word embeddings
up and pooled vector down, which PrivateLoRA and the hidden-state split both pay), and on the
adapter traffic alone — the paper's accounting, 1 − (r_C2D + r_D2C)/(2d) = 1 − r/d per adapted
projection.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str]


def _pm(stat: tuple[float, float] | list[float], digits: int = 3) -> str:
    mean, std = stat
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def rows(res: dict[str, Any]) -> list[Row]:
    """The table's rows from :func:`mining.privatelora.experiment.run`'s results."""
    links, d, r = res["links"], res["dims"]["d"], res["dims"]["r"]
    loop = next(k.split("|", 1)[1] for k in links)
    pl, hid = links[f"privatelora|{loop}"], links[f"hidden|{loop}"]
    out: list[Row] = [
        ("bytes/token, inference (wire, both ways)", "PrivateLoRA", f"{pl['bytes_per_token']:,.0f}"),
        ("bytes/token, inference (wire, both ways)", "hidden states", f"{hid['bytes_per_token']:,.0f}"),
        ("bytes/token, inference (wire, both ways)", "device-only", "0"),
        ("bytes/token, tuning step", "PrivateLoRA", f"{pl['train_bytes_per_token']:,.0f}"),
        ("bytes/token, tuning step", "hidden states", f"{hid['train_bytes_per_token']:,.0f}"),
        (
            "traffic reduction vs hidden, whole wire",
            "PrivateLoRA",
            f"{100 * (1 - pl['bytes_per_token'] / hid['bytes_per_token']):.1f}%",
        ),
        (
            "traffic reduction vs hidden, adapters only",
            "PrivateLoRA",
            f"{100 * (1 - pl['adapter_bytes_per_token'] / hid['adapter_bytes_per_token']):.1f}% "
            f"(paper's formula 1 − r/d = {100 * (1 - r / d):.1f}%)",
        ),
    ]
    for key, stats in links.items():
        name, net = key.split("|", 1)
        label = "PrivateLoRA" if name == "privatelora" else "hidden states"
        out.append((f"tokens/s inference, {net}", label, f"{stats['tokens_per_s']:,.0f}"))
    out.append(
        ("tokens/s inference, on the device", "device-only", f"{res['device_only']['tokens_per_s']:,.0f}")
    )
    params = res["params"]
    out += [
        ("parameters held on the device", "PrivateLoRA / hidden", f"{params['device']:,.0f}"),
        ("parameters held on the device", "device-only", f"{params['whole']:,.0f}"),
    ]
    names = {"privatelora": "PrivateLoRA (split)", "lora": "LoRA", "none": "no tuning (head only)"}
    for metric in ("accuracy", "f1"):
        for method, label in names.items():
            out.append((f"test {metric} (held-out heads)", label, _pm(res["summary"][method][metric])))
    for method, label in names.items():
        s = res["summary"][method]
        out.append(
            (
                "trainable parameters / s per step",
                label,
                f"{s['trainable'][0]:,.0f} / {s['s_per_step'][0]:.2f}",
            )
        )
    return out


def markdown(table: list[Row]) -> str:
    lines = ["| what | system | value |", "|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in table]) + "\n"
