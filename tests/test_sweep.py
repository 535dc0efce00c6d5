import json

import pytest

import gentools as gt
from gentools import store

CALLS = []


def square(x, seed, offset=0):
    CALLS.append((x, seed))
    return {"value": x * x + offset, "curve": [x, seed]}


@pytest.fixture
def sweep_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    CALLS.clear()
    return tmp_path / "sweeps"


def test_results_come_back_as_a_table_and_are_cached(sweep_cache):
    table = gt.sweep(square, grid=dict(x=[1, 2, 3], seed=[0, 1]), name="squares", fixed=dict(offset=1))
    assert table[["x", "seed", "value"]].values.tolist()[:2] == [[1, 0, 2], [1, 1, 2]]
    assert table.attrs["computed"] == 6 and len(CALLS) == 6
    assert table["curve"][5] == [3, 1]
    again = gt.sweep(square, grid=dict(x=[1, 2, 3], seed=[0, 1]), name="squares", fixed=dict(offset=1))
    assert len(CALLS) == 6 and again.attrs["cached"] == 6 and again.equals(table)
    gt.sweep(square, grid=dict(x=[1], seed=[0]), name="squares", fixed=dict(offset=2))  # other config, new run
    assert len(CALLS) == 7


def test_an_interrupted_sweep_resumes_where_it_stopped(sweep_cache):
    def flaky(x, seed):
        if x == 3 and not flaky.recovered:
            raise KeyboardInterrupt
        return square(x, seed)

    flaky.recovered = False
    with pytest.raises(KeyboardInterrupt):
        gt.sweep(flaky, grid=dict(x=[1, 2, 3, 4], seed=[0]), name="resume")
    assert len(CALLS) == 2
    flaky.recovered = True
    table = gt.sweep(flaky, grid=dict(x=[1, 2, 3, 4], seed=[0]), name="resume")
    assert CALLS[2:] == [(3, 0), (4, 0)]  # only the missing runs
    assert table.attrs == {"name": "resume", "computed": 2, "cached": 2}
    assert table["value"].tolist() == [1, 4, 9, 16]


@pytest.mark.parametrize("damage", ["torn", "garbage", "other-config"])
def test_a_damaged_cache_file_is_recomputed_with_a_warning(sweep_cache, damage):
    gt.sweep(square, grid=dict(x=[2], seed=[0]), name="damaged")
    (path,) = (sweep_cache / "damaged").glob("*.json")
    text = path.read_text()
    path.write_text({"torn": text[: len(text) // 2], "garbage": "\x00\x01",
                     "other-config": json.dumps({"config": {"x": 99, "seed": 0}, "result": {"value": -1}})}[damage])
    with pytest.warns(UserWarning, match="unreadable cache file"):
        table = gt.sweep(square, grid=dict(x=[2], seed=[0]), name="damaged")
    assert table["value"].tolist() == [4] and len(CALLS) == 2
    assert json.loads(path.read_text())["result"]["value"] == 4  # repaired


def test_writes_are_atomic_and_leave_no_temporary_files(sweep_cache):
    gt.sweep(square, grid=dict(x=[1, 2], seed=[0]), name="atomic")
    assert sorted(p.suffix for p in (sweep_cache / "atomic").iterdir()) == [".json", ".json"]


def test_a_change_of_gentools_source_invalidates_the_cache(sweep_cache, monkeypatch):
    gt.sweep(square, grid=dict(x=[1], seed=[0]), name="code")
    monkeypatch.setattr(store, "source_hash", lambda: "changed")
    gt.sweep(square, grid=dict(x=[1], seed=[0]), name="code")
    assert len(CALLS) == 2


def test_each_run_is_seeded_and_histories_round_trip(sweep_cache, small_mnist1d):
    def train(seed):
        model = gt.models.MLP(40, [8], 10)
        return {"history": gt.fit(model, small_mnist1d, epochs=1, seed=seed)}

    first = gt.sweep(train, grid=dict(seed=[0, 1]), name="histories")["history"]
    fresh = gt.sweep(train, grid=dict(seed=[0, 1]), name="histories", cache=False)["history"]
    assert isinstance(first[0], gt.History)
    assert first[0].final["test_loss"] == pytest.approx(fresh[0].final["test_loss"], rel=1e-6)
    assert first[0].final["test_loss"] != first[1].final["test_loss"]


def test_bad_names_and_results_are_reported(sweep_cache):
    with pytest.raises(ValueError, match="must be letters"):
        gt.sweep(square, grid=dict(x=[1], seed=[0]), name="../escape")
    with pytest.raises(TypeError, match="cannot be cached"):
        gt.sweep(lambda seed: {"model": object()}, grid=dict(seed=[0]), name="bad")


def test_an_executor_runs_the_grid(sweep_cache):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        table = gt.sweep(square, grid=dict(x=[1, 2, 3], seed=[0]), name="threads", executor=pool)
    assert table["value"].tolist() == [1, 4, 9]
