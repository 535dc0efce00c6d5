import math

import numpy as np
import pandas as pd
import pytest
import torch

import gentools as gt
from gentools.train import DivergedError


def _train(data, seed=0, **options):
    gt.seed_everything(seed)
    model = gt.models.MLP(40, [32], 10)
    return model, gt.fit(model, data, **{"epochs": 5, "lr": 1e-2, "seed": seed, **options})


def test_same_seed_gives_identical_history(small_mnist1d):
    _, first = _train(small_mnist1d)
    _, second = _train(small_mnist1d)
    strip = lambda h: [{k: v for k, v in r.items() if k != "time"} for r in h.records]  # noqa: E731
    assert strip(first) == strip(second)
    _, other = _train(small_mnist1d, seed=1)
    assert strip(other) != strip(first)


def test_history_records_every_split_and_epoch(small_mnist1d):
    _, history = _train(small_mnist1d.hold_out(0.2))
    assert len(history) == 6 and history["epoch"].tolist() == [0, 1, 2, 3, 4, 5]
    for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc", "time", "train_loss_running"):
        assert key in history.final
    assert math.isnan(history.records[0]["train_loss_running"])
    assert history["train_loss"][-1] < history["train_loss"][0]  # it learns
    assert np.all(np.diff(history["time"]) > 0)
    assert history.frame().shape == (6, len(history.final) - 1)
    assert gt.History.from_dict(history.to_dict()).records == history.records
    with pytest.raises(KeyError, match="has no metric 'bogus'"):
        history["bogus"]


def test_sgd_and_mse_on_classes_and_regression(small_mnist1d):
    _, history = _train(small_mnist1d, optimizer="sgd", loss="mse", lr=0.05)
    assert history.final["train_loss"] < history.records[0]["train_loss"]
    regression = gt.data.load("regression", n_train=64, n_test=64)
    gt.seed_everything(0)
    model = gt.models.MLP(1, [32], 1)
    history = gt.fit(model, regression, epochs=30, lr=1e-2, batch_size=16)  # the loss defaults to squared error
    assert history.meta["loss"] == "mse" and "train_acc" not in history.final
    assert history.final["test_loss"] < history.records[0]["test_loss"]
    with pytest.raises(ValueError, match="cross_entropy needs class labels"):
        gt.fit(model, regression, epochs=1, loss="cross_entropy")


def test_bad_options_are_reported(small_mnist1d):
    model = gt.models.MLP(40, [8], 10)
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adam, adamw or a callable.*got 'lbfgs'"):
        gt.fit(model, small_mnist1d, epochs=1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="loss must be None or one of cross_entropy, mse, got 'hinge'"):
        gt.fit(model, small_mnist1d, epochs=1, loss="hinge")
    with pytest.raises(TypeError, match="lrr: not a training setting; the settings are epochs, optimizer, lr"):
        gt.fit(model, small_mnist1d, epochs=1, lrr=0.1)
    with pytest.raises(TypeError, match="epochs is needed"):
        gt.fit(model, small_mnist1d, lr=0.1)
    with pytest.raises(ValueError, match="a single model trains with one seed"):
        gt.fit(model, small_mnist1d, epochs=1, seed=[0, 1])


def test_settings_are_stated_once_and_varied_by_replace(small_mnist1d):
    base = gt.Settings(epochs=3, optimizer="sgd", lr=0.05, measure=["test"])
    assert base.measure == ("test",) and hash(base) == hash(gt.Settings(epochs=3, optimizer="sgd", lr=0.05, measure=("test",)))
    with pytest.raises(ValueError, match="lr must be a number"):
        base.replace(lr=-1.0)
    gt.seed_everything(0)
    by_settings = gt.fit(gt.models.MLP(40, [8], 10), small_mnist1d, base.replace(lr=0.1), seed=1)
    gt.seed_everything(0)
    by_keywords = gt.fit(gt.models.MLP(40, [8], 10), small_mnist1d, epochs=3, optimizer="sgd", lr=0.1, measure=["test"], seed=1)
    assert by_settings.records == [{**r, "time": by_settings.records[i]["time"]} for i, r in enumerate(by_keywords.records)]
    assert by_settings.meta == by_keywords.meta and by_settings.meta["lr"] == 0.1 and by_settings.meta["seed"] == 1


def test_nan_loss_raises_a_helpful_error(small_mnist1d):
    broken = small_mnist1d.replace(train=gt.data.TensorData(small_mnist1d.train.x * float("nan"), small_mnist1d.train.y))
    with pytest.raises(DivergedError, match=r"diverged in epoch 1: .*smaller learning rate \(lr=0\.01 now\)"):
        _train(broken)


def test_early_stopping_stops_and_restores_the_best_weights(small_mnist1d):
    data = small_mnist1d.hold_out(0.3, seed=0)
    stopper = gt.EarlyStopping("valid_loss", patience=3)
    model, history = _train(data, epochs=200, lr=3e-2, callbacks=[stopper])
    best = history.meta["best_epoch"]
    assert history.meta["stopped_epoch"] == best + 3 < 200
    assert best == int(history.best("valid_loss")["epoch"])
    restored = gt.evaluate(model, data.valid, n_classes=10)["loss"]
    assert restored == pytest.approx(history.records[best]["valid_loss"], rel=1e-5)
    with pytest.raises(KeyError, match="hold_out"):
        _train(small_mnist1d, callbacks=[gt.EarlyStopping("valid_loss")])


def test_stop_at_stops_at_the_first_epoch_that_reaches_the_value(small_mnist1d):
    _, full = _train(small_mnist1d, epochs=60, lr=3e-2)
    losses = full["train_loss_running"]
    target = float(losses[30])   # reached first at some epoch between 1 and 30
    first = next(epoch for epoch, loss in zip(full["epoch"], losses) if epoch >= 1 and loss <= target)
    _, stopped = _train(small_mnist1d, epochs=60, lr=3e-2, callbacks=[gt.StopAt("train_loss_running", target)])
    assert stopped.meta["stopped_epoch"] == first == int(stopped.final["epoch"])
    _, never = _train(small_mnist1d, epochs=3, callbacks=[gt.StopAt("train_loss_running", 0.0)])
    assert never.meta["stopped_epoch"] is None and int(never.final["epoch"]) == 3
    reused = gt.StopAt("train_loss_running", target)  # an instance watching two fits decides each afresh
    _train(small_mnist1d, epochs=60, lr=3e-2, callbacks=[reused])
    reused.value = 0.0
    _, again = _train(small_mnist1d, epochs=3, callbacks=[reused])
    assert reused.reached is None and again.meta["stopped_epoch"] is None and int(again.final["epoch"]) == 3
    with pytest.raises(KeyError, match="does not record"):
        _train(small_mnist1d, callbacks=[gt.StopAt("valid_loss")])


def test_step_hook_runs_after_every_optimizer_step(small_mnist1d):
    class ZeroFirstWeight(gt.train.Callback):
        calls = 0

        def on_step(self, model):
            self.calls += 1
            with torch.no_grad():
                model[1].weight[0, 0] = 0.0

    hook = ZeroFirstWeight()
    model, _ = _train(small_mnist1d, epochs=2, batch_size=100, callbacks=[hook])
    assert hook.calls == 2 * 4 and model[1].weight[0, 0].item() == 0.0


def test_record_adds_a_measurement_to_every_epoch(small_mnist1d):
    calls = []

    def first_bias(model):
        calls.append(1)
        return model[-1].bias[0].item()

    model = gt.models.MLP(40, [8], 10)
    history = gt.fit(model, small_mnist1d, epochs=2, callbacks=[gt.train.Record(first_bias=first_bias)])
    assert len(calls) == 2 and np.isnan(history["first_bias"][0])
    assert history["first_bias"][-1] == model[-1].bias[0].item()


def test_accuracy_on_records_each_named_split_and_frames_gathers_a_sweeps_histories(small_mnist1d):
    first, second = small_mnist1d.train.subset(slice(0, 100)), small_mnist1d.train.subset(slice(100, 300))
    model = gt.models.MLP(40, [8], 10)
    history = gt.fit(model, small_mnist1d, epochs=2, callbacks=[gt.train.accuracy_on(10, first_fit=first, second_fit=second)])
    for name, split in [("first_fit", first), ("second_fit", second)]:
        assert np.isnan(history[name][0]) and history[name][-1] == gt.evaluate(model, split, n_classes=10)["acc"]
    runs = pd.DataFrame({"rule": ["a", "b"], "seed": [0, 0], "history": [history, history]})
    table = gt.train.frames(runs, "rule", "seed")
    assert len(table) == 6 and table.index.is_unique and list(table["epoch"]) == [0, 1, 2, 0, 1, 2]
    assert list(table["rule"]) == ["a"] * 3 + ["b"] * 3 and table["first_fit"].iloc[-1] == history["first_fit"][-1]


def test_at_level_reads_a_column_when_another_first_reached_a_level():
    run = pd.DataFrame({"epoch": [2, 0, 1, 3], "clean": [0.6, 0.0, 0.4, 0.5], "noisy": [0.3, 0.0, 0.1, 0.9]})
    assert gt.train.at_level(run, "clean", 0.5, "noisy") == pytest.approx(0.2)   # halfway from epoch 1 to 2, not epoch 3
    assert gt.train.at_level(run, "clean", 0.6, "noisy") == pytest.approx(0.3)
    assert math.isnan(gt.train.at_level(run, "clean", 0.7, "noisy"))             # never reached
    both = pd.concat([run.assign(rule="a"), run.assign(rule="b", noisy=run.noisy * 2)])
    table = gt.train.at_level(both, "clean", 0.5, ["noisy", "epoch"], by=["rule"])
    assert table.index.names == ["rule"] and table.loc["b", "noisy"] == pytest.approx(0.4)
    assert table.loc["a", "epoch"] == pytest.approx(1.5)
    assert list(gt.train.at_level(both, "clean", 0.5, "noisy", by="rule").round(6)) == [0.2, 0.4]
    seeds = pd.concat([both.assign(seed=0), both.assign(seed=1, noisy=both.noisy * 3)])
    table = gt.train.at_level(seeds, "clean", 0.5, "noisy", by=["rule", "seed"])
    assert table.index.names == ["rule", "seed"] and table[("b", 1)] == pytest.approx(1.2)
    assert math.isnan(gt.train.at_level(run[run.epoch > 0], "clean", 0.3, "noisy"))   # passed before the first epoch
    assert gt.train.at_level(run.assign(clean=[0.6, math.nan, 0.4, 0.5]), "clean", 0.5, "noisy") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="by="):
        gt.train.at_level(both, "clean", 0.5, "noisy")


def test_measure_every_and_measure_choose_when_and_what_is_measured(small_mnist1d):
    data = small_mnist1d.hold_out(0.25)
    gt.seed_everything(0)
    history = gt.fit(gt.models.MLP(40, [8], 10), data, epochs=5, measure_every=2, measure=["valid"])
    assert [r["epoch"] for r in history.records if "valid_acc" in r] == [0, 2, 4, 5]  # and always the last
    assert "test_acc" not in history.final and len(history["train_loss_running"]) == 6
    assert not np.isnan(history["train_acc_running"][1:]).any()
    assert history.best("valid_loss")["epoch"] in (0, 2, 4, 5)  # unmeasured epochs are NaN, never the best


def test_reaches_gives_the_first_epoch_at_a_level_or_nan():
    history = gt.History(records=[{"epoch": 0, "acc": math.nan}, {"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.995},
                                  {"epoch": 3, "acc": 0.98}, {"epoch": 4, "acc": 1.0}])
    assert history.reaches("acc", 0.99) == 2 and history.reaches("acc", 0.5) == 1
    assert math.isnan(history.reaches("acc", 1.01))


@pytest.mark.parametrize("setting, message", [(dict(batch_size=0), "batch_size must be a whole number, 1 or more, got 0"),
                                              (dict(lr=-0.1), "lr must be a number, 0 or more"),
                                              (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
                                              (dict(measure_every=0), "measure_every must be None or a whole number"),
                                              (dict(seed=-2), "seed must be None, a whole number 0 or more"),
                                              (dict(epochs=-1, weight_decay=-1.0),
                                               "epochs must be a whole number, 0 or more, got -1; weight_decay must be a number, 0 or more")])
def test_a_setting_out_of_range_gets_one_clear_message(small_mnist1d, setting, message):
    with pytest.raises(ValueError, match=message):
        gt.Settings(**{"epochs": 1, **setting})
    with pytest.raises(ValueError, match=message):
        gt.fit(gt.models.MLP(40, [4], 10), small_mnist1d, **{"epochs": 1, **setting})


def test_settings_take_numpy_numbers_and_one_split_name_and_leave_seeds_to_experiments(small_mnist1d):
    import numpy as np

    settings = gt.Settings(epochs=np.int64(2), batch_size=np.int64(50), seed=np.arange(3), measure="test")
    assert settings.epochs == 2 and type(settings.epochs) is int and settings.seed == (0, 1, 2) and settings.measure == ("test",)
    with pytest.raises(ValueError, match="seeds its runs itself"):
        gt.ensemble.fit_each({"d": small_mnist1d}, [4], epochs=1, seed=3)
    with pytest.raises(ValueError, match="gt.fitted takes the run's seed as seed="):
        gt.fitted(lambda: gt.models.MLP(40, [4], 10), small_mnist1d, gt.Settings(epochs=1, seed=2), name="seeded")
