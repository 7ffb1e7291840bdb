"""Figures drawn from metrics rows: PPO curves, over-optimisation axes, the live helper."""
import matplotlib

matplotlib.use("Agg")

from igpt_lib import plots  # noqa: E402


def _rows(n):
    return [{"iteration": i, "score": 0.1 * i, "gold": 0.5 - 0.01 * (i - 10) ** 2, "kl": 0.05 * i,
             "kl_k3": 0.04 * i, "entropy": 2.0 - 0.01 * i} for i in range(n)]


def test_smooth_is_a_trailing_mean_that_keeps_gaps():
    assert plots.smooth([1, 3, None, 5], 2) == [1, 2, None, 4]


def test_ppo_curves_draw_proxy_and_gold_together():
    fig = plots.plot_ppo(_rows(20), window=1)
    proxy_panel = fig.axes[0]
    assert [line.get_label() for line in proxy_panel.lines] == ["score", "gold"]
    assert list(proxy_panel.lines[1].get_ydata()) == [r["gold"] for r in _rows(20)]


def test_overoptimisation_plots_against_sqrt_kl():
    fig = plots.plot_overoptimisation({"β = 0": _rows(20)}, window=1)
    xs = fig.axes[1].lines[0].get_xdata()
    assert abs(xs[4] - 0.2 ** 0.5) < 1e-9 and len(fig.axes[1].lines) == 1
    exact = [{**r, "kl_exact": 0.03 * r["iteration"]} for r in _rows(20)]  # logged: the exact KL is the axis
    xs = plots.plot_overoptimisation({"β = 0": exact}, window=1).axes[1].lines[0].get_xdata()
    assert abs(xs[4] - 0.12 ** 0.5) < 1e-9
    assert [line.get_label() for line in plots.plot_ppo(exact, window=1).axes[1].lines] == ["kl", "kl_k3", "kl_exact"]


def test_live_plot_redraws_every_n_updates(monkeypatch):
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda fig: shown.append(fig))
    monkeypatch.setattr(IPython.display, "clear_output", lambda wait=False: shown.append("clear"))
    live = plots.LivePlot(every=5)
    for row in _rows(12):
        live.update(row)
    assert shown.count("clear") == 2 and len(live.rows) == 12
