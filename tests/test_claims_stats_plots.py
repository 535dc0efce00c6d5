import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

import gentools as gt
from gentools.claims import CheckFailed, ClaimFailed


def test_a_claim_that_holds_is_printed_with_its_evidence(capsys):
    assert gt.claim(2 > 1, "two exceeds one", two=2.0, one=np.float64(1)) is None  # nothing echoed after a cell
    assert "✔ two exceeds one  [two = 2, one = 1]" in capsys.readouterr().out
    recorded = gt.claims.RECORDED[-1]
    assert recorded.held and recorded.record() == {"statement": "two exceeds one", "held": True, "margin": None,
                                                   "numbers": "two = 2, one = 1", "scale": "tiny", "seed_draw": 0}


def test_a_claim_carries_its_margin_which_cannot_contradict_its_condition(capsys, monkeypatch):
    gt.claim(0.42 >= 0.3, "at least 30%", margin=0.42 - 0.3, share=0.42)
    assert "(margin 0.12)" in capsys.readouterr().out
    monkeypatch.setenv("GENTOOLS_SEED", "2")
    assert gt.claims.RECORDED[-1].record()["margin"] == pytest.approx(0.12)
    assert gt.claims.RECORDED[-1].record()["seed_draw"] == 2
    with pytest.raises(ValueError, match="says it held, its condition says the opposite"):
        gt.claim(False, "a contradiction", margin=0.1)


def test_a_failed_claim_is_shown_before_it_raises_so_the_claims_page_lists_it(capsys):
    with pytest.raises(ClaimFailed):
        gt.claim(False, "one exceeds two", margin=-1.0)
    assert "✘ FAILED: one exceeds two  (margin -1)" in capsys.readouterr().out
    page = gt.claims.RECORDED[-1]._repr_html_()
    assert 'class="gentools-claim gentools-claim-failed"' in page and "✘ failed:" in page


def test_a_claim_in_html_carries_its_record_for_the_claims_page():
    import html
    import json
    import re

    page = gt.claims.Claim("a < b & c", True, {"gap": 0.25})._repr_html_()
    record = json.loads(html.unescape(re.search(r'data-claim="([^"]*)"', page).group(1)))
    assert record["statement"] == "a < b & c" and record["numbers"] == "gap = 0.25"
    assert "a &lt; b &amp; c" in page and "✔" in page


def test_a_failing_claim_raises_with_its_evidence():
    with pytest.raises(ClaimFailed, match=r"Claim failed: the test error falls\n.*err = 0\.5"):
        gt.claim(np.bool_(False), "the test error falls", err=0.5)
    assert gt.claims.RECORDED[-1].held is False


def test_wilson_interval_known_values():
    low, high = gt.stats.wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    low, high = gt.stats.wilson_interval(50, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    with pytest.raises(ValueError):
        gt.stats.wilson_interval(11, 10)


def test_bootstrap_agrees_with_wilson_for_many_examples():
    correct = (np.random.default_rng(0).random(2000) < 0.7).astype(float)
    wilson = gt.stats.wilson_interval(int(correct.sum()), len(correct))
    bootstrap = gt.stats.bootstrap_interval(correct, seed=0)
    assert np.allclose(wilson, bootstrap, atol=0.005)


def test_mean_interval():
    mean, low, high = gt.stats.mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low == pytest.approx(2 - 4.303 / np.sqrt(3), abs=1e-3) and high > 3


def test_plots_label_their_axes(small_mnist1d):
    gt.plots.style()
    gt.seed_everything(0)
    history = gt.fit(gt.models.MLP(40, [16], 10), small_mnist1d.hold_out(0.2), epochs=4, lr=1e-2)
    ax = gt.plots.generalization_curves(history)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    table = pd.DataFrame({"width": [1, 1, 2, 2], "seed": [0, 1, 0, 1], "err": [0.5, 0.7, 0.2, 0.4]})
    ax = gt.plots.metric_vs(table, "width", "err", xlabel="hidden units", ylabel="test error")
    (line,) = ax.lines[:1]
    assert line.get_ydata().tolist() == pytest.approx([0.6, 0.3])
    assert ax.get_xlabel() == "hidden units" and ax.get_ylabel() == "test error"
    ax = gt.plots.bar_compare(["a", "b"], [0.3, 0.6], [0.32, 0.68])
    assert ax.get_ylabel() == "test accuracy" and len(ax.patches) == 4
    runs = pd.DataFrame({"rule": ["b"] * 4 + ["a"] * 2, "seed": [0, 0, 1, 1, 0, 0], "epoch": [0, 1] * 3,
                         "clean": [0.0, 0.4, 0.2, 0.6, 0.0, 1.0], "noisy": [0.0, 0.1, 0.0, 0.3, 0.0, 0.5]})
    ax = gt.plots.paths(runs, "clean", "noisy", "rule", ylabel="mislabelled fitted")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "a"]   # in order of appearance
    assert ax.lines[0].get_xdata().tolist() == pytest.approx([0.1, 0.5])      # the mean over seeds, epoch by epoch
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([0.0, 0.2])
    assert ax.get_xlabel() == "clean" and ax.get_ylabel() == "mislabelled fitted"
    plt.close("all")


def test_welch_verdicts():
    base = [0.60, 0.61, 0.59]
    assert gt.stats.welch_verdict([0.70, 0.71, 0.69], base) == "better"
    assert gt.stats.welch_verdict([0.50, 0.51, 0.49], base) == "worse"
    assert gt.stats.welch_verdict([0.62, 0.58, 0.61], base) == "within noise"
    assert gt.stats.welch_p([0.7, 0.7], [0.6, 0.6]) == 0.0 and gt.stats.welch_p([0.6, 0.6], [0.6, 0.6]) == 1.0
    assert gt.stats.welch_p([0.70, 0.72, 0.69], base, alternative="greater") < 0.01
    assert gt.stats.welch_p([0.70, 0.72, 0.69], base, alternative="less") > 0.99


def test_a_claim_of_the_book_scale_is_shown_but_not_checked_at_the_tiny_scale(capsys):
    recorded = len(gt.claims.RECORDED)
    gt.claim(False, "needs the book's data", margin=-0.1, scales=("book", "paper"), measured=0.4)
    assert "not checked at the tiny scale (a claim of the book and paper scale): needs the book's data" in capsys.readouterr().out
    assert len(gt.claims.RECORDED) == recorded  # not a claim of this run
    with pytest.raises(ClaimFailed):
        gt.claim(False, "checked here", scales=("tiny",))


def test_granulated_tau_separates_what_tracks_one_hyperparameter_from_what_tracks_the_other():
    grid = pd.DataFrame([dict(a=a, b=b, c=c) for a in range(3) for b in range(3) for c in range(2)])
    grid["target"] = grid.a + 10 * grid.b + 0.1 * grid.c
    grid["measure"] = grid.a - grid.b
    taus = gt.stats.granulated_tau(grid, "measure", "target", ["a", "b", "c"])
    assert taus["a"] == pytest.approx(1.0) and taus["b"] == pytest.approx(-1.0)
    assert np.isnan(taus["c"])   # the measure ignores c: every group's tau is undefined
    assert gt.stats.granulated_tau(grid, "target", "target", ["a", "b", "c"]) == pytest.approx({"a": 1, "b": 1, "c": 1})
    one = gt.stats.granulated_tau(grid[(grid.b == 0) & (grid.c == 0)], "measure", "target", ["a"])
    assert one["a"] == pytest.approx(1.0)


def test_tau_table_rows_are_the_overall_and_granulated_taus():
    grid = pd.DataFrame([dict(a=a, b=b) for a in range(3) for b in range(2)])
    grid["target"] = grid.a + 0.1 * grid.b
    grid["measure"], grid["noise"] = grid.a - 3 * grid.b, [0.3, 0.1, 0.9, 0.2, 0.5, 0.4]
    table = gt.stats.tau_table(grid, ["measure", "noise"], "target", ["a", "b"])
    assert list(table.index) == ["measure", "noise"]
    assert table.loc["noise", "overall"] == pytest.approx(scipy.stats.kendalltau(grid.noise, grid.target).statistic)
    assert table.loc["measure", ["a", "b"]].tolist() == pytest.approx([1.0, -1.0])
    assert table.loc["measure", "mean over the hyperparameters it varies with"] == pytest.approx(0.0)


def test_table_heatmap_writes_every_finite_value_and_leaves_nan_blank():
    table = pd.DataFrame({"a": [0.5, np.nan], "b": [-1.0, 0.25]}, index=["x", "y"])
    ax = gt.plots.table_heatmap(table, label="tau", title="t")
    assert sorted(text.get_text() for text in ax.texts) == ["-1.00", "0.25", "0.50"]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["x", "y"] and ax.get_title() == "t"
    plt.close(ax.figure)


def test_estimates_vs_truth_draws_each_estimate_and_the_diagonal():
    table = pd.DataFrame({"error": [0.1, 0.3], "disagreement": [0.12, 0.25], "1 - confidence": [0.05, 0.06]})
    ax = gt.plots.estimates_vs_truth(table, "error", ["disagreement", "1 - confidence"], title="t")
    assert [collection.get_offsets().tolist() for collection in ax.collections] == [[[0.1, 0.12], [0.3, 0.25]],
                                                                                  [[0.1, 0.05], [0.3, 0.06]]]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["disagreement", "1 - confidence", "equal to the truth"]
    assert ax.get_xlabel() == "error" and ax.get_title() == "t"
    plt.close(ax.figure)


def test_probit_lines_and_signals_draw_what_they_are_given():
    table = pd.DataFrame({"id": [0.3, 0.5, 0.7, 0.9], "a": [0.25, 0.4, 0.55, 0.7], "b": [0.2, 0.22, 0.25, 0.3]})
    ax = gt.plots.probit_lines(table, "id", ["a", "b"], labels=["shift a", "shift b"], title="t")
    assert len(ax.collections) == 2 and len(ax.lines) == 3 and ax.get_title() == "t"   # two fits and the diagonal
    fit = gt.shift.line_fit(table.id, table.a)
    xs, ys = ax.lines[0].get_data()
    assert np.allclose(ys, fit.slope * xs + fit.intercept)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["shift a", "shift b", "no change"]
    plt.close(ax.figure)
    split = lambda scale: gt.data.TensorData(scale * torch.arange(10.0).repeat(3, 1), torch.tensor([1, 2, 3]))  # noqa: E731
    fig = gt.plots.signals({"plain": split(1), "x2": split(2), "x3": split(3)}, index=1, reference="plain", columns=4)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["x2 (class 2)", "x3 (class 2)"] and len(shown[0].lines) == 2
    plt.close(fig)
