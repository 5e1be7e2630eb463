"""Draw the competition at the end of the Hebbian phase across presets: docs/figures/competition_diagnostics.png.

    python scripts/diagnostics_figure.py                      # from the committed records, docs/results/*.json
    python scripts/diagnostics_figure.py --runs runs --out check.png        # straight from a runs folder

Reads the ``competition`` block every run records since protocol v2 (hebblib.diagnostics.competition_diagnostics:
the trained network in eval mode on the first 1,000 training images) and draws, per Hebbian layer in forward
order, one line per preset (variant, protocol and precision as in docs/results.md; mean over its seeds, bars
± the sample std when there are several): the normalised win-rate entropy, the fraction of units that never
win, the fraction never active after the block's activation, and the mean weight norm ‖W_o‖ (shaded: ± its
spread over the units). Presets without diagnostics are left out (and named); none at all is an error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hebblib.results import group_runs, stored_runs  # noqa: E402

STORE = ROOT / "docs" / "results"
OUT = ROOT / "docs" / "figures" / "competition_diagnostics.png"
PANELS = (("win_entropy", "win-rate entropy H (1 = uniform)"), ("dead_never_win", "fraction of units never winning"),
          ("never_active", "fraction of units never active"), ("radius_mean", "weight norm ‖W_o‖ (mean over units)"))


def records_from_store(store: Path) -> list[dict]:
    return [r for path in sorted(store.glob("*.json")) for r in stored_runs(json.loads(path.read_text()))]


def records_from_runs(runs: Path) -> list[dict]:
    """Every complete run under ``runs`` (any data source: for checking the figure on quick runs)."""
    records = [json.loads(p.read_text()) for p in sorted(Path(runs).glob("*/*/seed*/results.json"))]
    return [r for r in records if r.get("complete")]


def label(group: dict) -> str:
    extra = (" --original" if group["original"] else "") + (" (changed)" if group.get("change") else "")
    seeds = f"{group['n']} seed{'s' if group['n'] > 1 else ''}"
    dataset = (group["records"][0].get("data") or {}).get("dataset", "cifar10") if group.get("records") else "cifar10"
    where = "" if dataset == "cifar10" else f", {dataset}"
    return f"{group['preset']}{extra} [v{group['protocol']}, {group['precision']}{where}, {seeds}]"


def series(group: dict) -> dict | None:
    """Per panel, per layer: mean and sample std over the group's seeds (fractions of the layer's units for
    the counts); the radius spread over units (mean over seeds). None without diagnostics."""
    import numpy as np

    records = [r for r in group["records"] if r.get("competition")]
    if not records:
        return None
    names = list(records[0]["competition"]["layers"])
    out = {"layers": names}
    for key, _ in PANELS:
        values = []
        for r in records:
            layers = r["competition"]["layers"]
            row = []
            for name in names:
                v = layers[name][key]
                if v is not None and key in ("dead_never_win", "never_active"):
                    v = v / layers[name]["units"]
                row.append(np.nan if v is None else v)
            values.append(row)
        values = np.array(values, dtype=float)
        out[key] = (values.mean(0), values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(names)))
    out["radius_spread"] = np.array([[r["competition"]["layers"][n]["radius_std"] for n in names]
                                     for r in records]).mean(0)
    return out


def draw(groups: list[dict], out: Path) -> list[str]:
    """Draw the groups that have diagnostics into ``out``; returns their labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from hebblib.plots import style

    drawn = [(g, s) for g, s in ((g, series(g)) for g in groups) if s is not None]
    if not drawn:
        raise SystemExit("no run with competition diagnostics found (runs since protocol v2 record them)")
    rows = (len(drawn) + 1) // 2  # legend lines, two entries each
    fig, axes = plt.subplots(2, 2, figsize=(2 * style.PANEL[0] + 1, 2 * style.PANEL[1] + 0.6 + 0.22 * rows))
    axes = axes.ravel()
    for i, (group, s) in enumerate(drawn):
        x = np.arange(1, len(s["layers"]) + 1)
        color, marker = plt.get_cmap("tab20")(i % 20), "osD^v<>ph"[i % 9]  # 20 colours, markers cycle apart
        for ax, (key, title) in zip(axes, PANELS):
            mean, std = s[key]
            ax.errorbar(x, mean, yerr=std if group["n"] > 1 else None, color=color, marker=marker, capsize=3,
                        label=label(group))
            if key == "radius_mean":
                ax.fill_between(x, mean - s["radius_spread"], mean + s["radius_spread"], color=color, alpha=0.12)
    for ax, (key, title) in zip(axes, PANELS):
        ax.set(title=title, xlabel="Hebbian layer (forward order)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if key != "radius_mean":
            ax.set_ylim(-0.03, 1.03)
    axes[-1].axhline(1, color=style.ACCENT_COLOR, linewidth=1, linestyle="--")
    axes[-1].set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(2, len(labels)), fontsize=8, frameon=False)
    fig.suptitle("Competition at the end of the Hebbian phase\n(eval mode, first 1,000 training images; "
                 "bars: ± sample std over seeds)")
    fig.tight_layout(rect=(0, 0.22 * rows / fig.get_figheight() + 0.01, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [label(g) for g, _ in drawn]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/diagnostics_figure.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=STORE, help="folder of committed records (docs/results)")
    parser.add_argument("--runs", type=Path, default=None, help="read a runs folder instead (any data source)")
    parser.add_argument("--out", type=Path, default=OUT, help="the PNG to write (docs/figures/competition_diagnostics.png)")
    parser.add_argument("--all-protocols", action="store_true", help="also the groups of earlier protocols")
    args = parser.parse_args(argv)
    records = records_from_runs(args.runs) if args.runs else records_from_store(args.store)
    groups = [g for g in group_runs(records) if g["current"] or args.all_protocols]
    drawn = draw(groups, args.out)
    missing = sorted({label(g) for g in groups} - set(drawn))
    print(f"wrote {args.out}: {len(drawn)} preset row(s)" + (f"; without diagnostics: {', '.join(missing)}"
                                                               if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
