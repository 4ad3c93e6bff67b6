"""`mokg audience score|export` and `mokg eval audience` (issue 7: audience targeting).

The commands build the method's typed config, open the store, fit the targeter and call
:mod:`gnn.audience`; heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mokg.context import open_store

if TYPE_CHECKING:
    from mokg.commands import Groups


class Method(StrEnum):
    rule = "rule"
    ppr = "ppr"
    gnn = "gnn"
    lookalike = "lookalike"
    density = "density"


CampaignOpt = Annotated[str, typer.Option("--campaign", "-c", help="Campaign id (e.g. camp_0007).")]
MethodOpt = Annotated[Method, typer.Option("--method", "-m", help="Targeting method.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the GNN (weights, negatives) and of density's samples.")]
FeaturesOpt = Annotated[
    bool, typer.Option("--features/--no-features", help="MiniLM text features for the GNN.")
]
LogOpt = Annotated[
    Path | None,
    typer.Option(help="lookalike, density: the advertiser's past conversion log (Parquet: campaign, user)."),
]
WindowsOpt = Annotated[
    Path | None,
    typer.Option(help="lookalike, density: the advertiser's campaign schedule (Parquet: id, start, end)."),
]


def method_config(method: str, seed: int, features: bool, log: Path | None, windows: Path | None) -> Any:
    """The typed config of ``method`` built from the CLI options (as the workbench builds it)."""
    from gnn.audience.configs import method_config as config_of

    return config_of(method, seed, features, log, windows)


def _fitted(store: Any, method: str, config: Any) -> Any:
    from gnn.audience.base import make_targeter

    typer.echo(f"fitting {method} on {store.config.describe()} ...", err=True)
    return make_targeter(method).fit(store, config)


def score(
    campaign: CampaignOpt,
    method: MethodOpt = Method.ppr,
    top: Annotated[int, typer.Option(help="How many users to print.")] = 20,
    explain: Annotated[str | None, typer.Option(help="Also show the paths behind this user.")] = None,
    seed: SeedOpt = 0,
    features: FeaturesOpt = True,
    conversion_log: LogOpt = None,
    campaign_windows: WindowsOpt = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="gnn, lookalike: score the users in ranges on Dask workers, local:N or tcp://HOST:PORT "
            "(needs mokg[scale]).",
        ),
    ] = None,
) -> None:
    """Print the best users for a campaign (and, with --explain USER, the graph paths behind one)."""
    from gnn.audience.base import load_campaign

    if cluster is not None:
        from gnn.audience.sharded import check_method, score_sharded

        check_method(method.value)
    with open_store() as store:
        info = load_campaign(store, campaign)
        config = method_config(method.value, seed, features, conversion_log, campaign_windows)
        targeter = _fitted(store, method.value, config)
        ranked = targeter.score(campaign) if cluster is None else score_sharded(targeter, campaign, cluster)
        typer.echo(
            f"{campaign}: intents {', '.join(info.intents) or '-'}; "
            f"domain {info.domain}; budget {info.budget}"
        )
        typer.echo(ranked.head(top).to_string(index=False))
        if explain:
            for path in targeter.explain(explain, campaign):
                typer.echo(path.describe())


def export(
    campaign: CampaignOpt,
    size: Annotated[int, typer.Option(help="Audience size: the top N users.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.parquet or FILE.csv")],
    method: MethodOpt = Method.ppr,
    min_size: Annotated[
        int | None,
        typer.Option(
            help="Refuse audiences smaller than this; may raise, never lower, the deployment's floor "
            "($MOKG_AUDIENCE_MIN_SIZE, default 100)."
        ),
    ] = None,
    hash_salt: Annotated[
        str | None, typer.Option(help="Write sha256(salt:id) instead of ids; a secret of 16+ characters.")
    ] = None,
    with_attributes: Annotated[
        bool, typer.Option("--with-attributes", help="Add the users' active domains.")
    ] = False,
    audit_log: Annotated[Path, typer.Option(help="Append-only JSON-lines audit log.")] = Path(
        "mokg-data/audience-audit.jsonl"
    ),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    seed: SeedOpt = 0,
    features: FeaturesOpt = True,
    conversion_log: LogOpt = None,
    campaign_windows: WindowsOpt = None,
) -> None:
    """Export a campaign's audience (ids + scores + method + graph version) with a JSON manifest.

    Refused (with a message, and logged): fewer users than the minimum, a salt shorter than 16
    characters, an unknown campaign, an existing --out without --overwrite, an unwritable path.
    Every attempt is logged as started before any work, then with its outcome. The file appears
    complete or not at all.
    """
    from gnn.audience.base import load_campaign
    from gnn.audience.export import ExportConfig, audited, check_request, export_audience

    cfg = ExportConfig(
        campaign, size, method.value, out, min_size, hash_salt, with_attributes, audit_log, overwrite
    )
    with audited(cfg) as attempt:
        check_request(cfg)  # the cheap checks before the store is opened and the (slow) fit
        with open_store() as store:
            load_campaign(store, campaign)
            config = method_config(method.value, seed, features, conversion_log, campaign_windows)
            manifest = export_audience(store, _fitted(store, method.value, config), config, cfg, attempt)
    typer.echo(f"wrote {manifest['count']} users of {campaign} ({method.value}) to {out}")
    typer.echo(json.dumps({k: manifest[k] for k in ("run_id", "count", "score_distribution")}, default=str))


def eval_audience(
    world: Annotated[Path, typer.Option(help="The world directory (with hidden/ truth).")] = Path(
        "mokg-data/world-demo"
    ),
    work: Annotated[Path, typer.Option(help="Where the per-condition stores are built.")] = Path(
        "mokg-data/audience-eval"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Write summary.csv/json and per_campaign.csv here.")
    ] = None,
    mined_store: Annotated[
        Path | None, typer.Option(help="A store with the world and a mined KG: adds the 'mined' condition.")
    ] = None,
    method: Annotated[list[Method] | None, typer.Option(help="Methods to run (repeat; default all).")] = None,
    condition: Annotated[
        list[str] | None, typer.Option(help="Graph conditions: none, truth (repeat; default both).")
    ] = None,
    seed: SeedOpt = 0,
    features: FeaturesOpt = True,
    epochs: Annotated[int, typer.Option(help="GNN training epochs.")] = 150,
) -> None:
    """Every targeting method × graph condition against the world's hidden conversions: one table."""
    from dataclasses import asdict

    from gnn.audience.evaluate import METHODS, EvalConfig, evaluate
    from gnn.audience.gnn import GNNConfig
    from graph.files import write_text

    config = EvalConfig(
        world=world,
        work_dir=work,
        mined_store=mined_store,
        methods=tuple(m.value for m in method) if method else METHODS,
        conditions=tuple(condition) if condition else ("none", "truth"),
        gnn=GNNConfig(seed=seed, features=features, epochs=epochs),
        seed=seed,
    )
    command = "mokg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    per_campaign, summary = evaluate(config, lambda msg: typer.echo(f"  {msg}", err=True))
    typer.echo(f"command: {command}\nseed: {seed}; world: {world}")
    typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out is not None:
        write_text(out / "summary.csv", summary.to_csv(index=False))
        write_text(out / "per_campaign.csv", per_campaign.to_csv(index=False))
        record = {
            "command": command,
            "seed": seed,
            "config": asdict(config),
            "summary": summary.to_dict("records"),
        }
        write_text(out / "summary.json", json.dumps(record, indent=2, default=str))
        typer.echo(f"wrote {out}/summary.csv, summary.json, per_campaign.csv")


def register(groups: Groups) -> None:
    """`audience score|export` and `eval audience`."""
    groups["audience"].command("score")(score)
    groups["audience"].command("export")(export)
    groups.eval.command("audience")(eval_audience)
