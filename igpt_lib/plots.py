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


def smooth(values, window):
    """Trailing running mean (the first points average what there is); None stays None."""
    out, kept = [], []
    for v in values:
        if v is not None:
            kept.append(v)
        recent = kept[-window:]
        out.append(sum(recent) / len(recent) if v is not None and recent else None)
    return out


def plot_ppo(rows, window=10, axes=None):
    """PPO curves from metrics.jsonl rows: the proxy (RM score) against the gold score, KL
    (the k1 and k3 estimators and the exact per-state KL, where logged) and entropy, per
    iteration, smoothed over `window` iterations."""
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    fig, it = axes[0].figure, [r["iteration"] for r in rows]
    panels = ((axes[0], ("score", "gold"), "reward: proxy (RM) vs gold"),
              (axes[1], ("kl", "kl_k3", "kl_exact"), "KL to SFT (nats)"), (axes[2], ("entropy",), "entropy (nats/token)"))
    for ax, keys, title in panels:
        for key in keys:
            ys = smooth([r.get(key) for r in rows], window)
            if any(y is not None for y in ys):
                ax.plot(it, ys, label=key)
        ax.set(xlabel="iteration", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_overoptimisation(runs, window=10):
    """Gao et al. (2022) axes: RM score and gold score against √KL, one colour per run
    ({label: metrics rows}); gold that peaks then falls while the RM score climbs is
    over-optimisation of the reward model. KL is the exact per-state KL when every row of every
    run has it, else k1 (cut at 0) for all of them, so one figure never mixes the two."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    key = "kl_exact" if all(r.get("kl_exact") is not None for rows in runs.values() for r in rows) else "kl"
    for label, rows in runs.items():
        x = [max(k, 0.0) ** 0.5 for k in smooth([r[key] for r in rows], window)]
        axes[0].plot(x, smooth([r["score"] for r in rows], window), label=label)
        axes[1].plot(x, smooth([r.get("gold") for r in rows], window), label=label)
    for ax, name in zip(axes, ("RM score (proxy)", "gold score")):
        ax.set(xlabel=f"√KL to SFT ({'exact' if key == 'kl_exact' else 'k1'})", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class LivePlot:
    """PPO curves redrawn in a notebook while training runs: pass `live.update` as the
    trainer's `callback`; every `every` iterations the cell's figure is replaced."""

    def __init__(self, every=10, window=10):
        self.rows, self.every, self.window = [], every, window

    def update(self, stats):
        self.rows.append(stats)
        if len(self.rows) % self.every == 0:
            self.draw()

    def draw(self):
        from IPython.display import clear_output, display
        fig = plot_ppo(self.rows, self.window)
        clear_output(wait=True)
        display(fig)
        plt.close(fig)
