"""Every figure of the kit, drawn from saved metrics (world.json, metrics.jsonl), live or after.

Functions take data and return a matplotlib Figure; notebooks show it, the CLI saves it.
"""
import matplotlib.pyplot as plt


def plot_curves(curves, xlabel="step", ylabel="", title="", logy=False, ax=None):
    """curves: {label: (xs, ys)} → one line per label."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_grouped_bars(groups, series, ylabel="", title="", ax=None):
    """groups: x labels; series: {label: [value per group]} → grouped bars."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_metrics(rows, x, ys, group=None, title="", ylabels=None):
    """One panel per metric in `ys`, a line per `group` value, from metrics.jsonl rows."""
    fig, axes = plt.subplots(1, len(ys), figsize=(4.2 * len(ys), 3.3), squeeze=False)
    keys = list(dict.fromkeys(r.get(group) for r in rows)) if group else [None]  # first-seen order
    for ax, y, ylabel in zip(axes[0], ys, ylabels or ys):
        for key in keys:
            sel = [r for r in rows if (group is None or r.get(group) == key) and r.get(y) is not None]
            ax.plot([r[x] for r in sel], [r[y] for r in sel], marker="o", ms=3, label=key)
        ax.set(xlabel=x, ylabel=ylabel)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
