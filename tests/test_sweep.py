import json
import os
import time
import types
from pathlib import Path

import pytest
import torch

import gentools as gt
from gentools import store

# Runs log their calls here. A global list a run appends to is part of what the run reads, so it would change the
# cache key at every call; a module is keyed by its name only, so the log lives in one.
_record = types.ModuleType("record")
_record.calls = CALLS = []


def square(x, seed, offset=0):
    _record.calls.append((x, seed))
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
    assert sorted(p.suffix for p in (sweep_cache / "atomic").iterdir() if p.suffix != ".lock") == [".json", ".json"]


def interval(x, seed):
    _record.calls.append((x, seed))
    return {"low": gt.stats.wilson_interval(x, 10)[0]}


def edited(monkeypatch, module):
    """gentools as if `module`'s code had been edited."""
    original = store._module_code
    monkeypatch.setattr(store, "_module_code", lambda name: original(name) + ("# edited" if name == module else ""))
    store._hash_of.cache_clear()


def test_an_edit_of_gentools_code_recomputes_the_runs_that_reach_it_and_only_those(sweep_cache, monkeypatch):
    def both():
        gt.sweep(square, grid=dict(x=[1], seed=[0]), name="plain")
        gt.sweep(interval, grid=dict(x=[3], seed=[0]), name="uses-stats")
    both()
    assert len(CALLS) == 2
    edited(monkeypatch, "attacks")                      # reached by neither
    both()
    assert len(CALLS) == 2
    edited(monkeypatch, "stats")                        # reached by the second only
    both()
    assert CALLS[2:] == [(3, 0)]
    edited(monkeypatch, "device")                       # how every run is seeded: reached by all
    both()
    assert len(CALLS) == 5
    store._hash_of.cache_clear()


def test_the_modules_a_run_reaches():
    from gentools import fingerprint

    def reached(value):
        walker = fingerprint._Walker(lambda data: None)
        walker.value(value, "it")
        return walker.reached

    rules = {"robust": gt.gradients.winsorized(2)}
    def fits(data):
        return gt.fit(gt.models.MLP(40, [8], 10), data, epochs=1, gradient=rules["robust"])
    def kernel(net, x):
        return gt.kernels.ntk(net, x)
    assert {"train", "models", "gradients"} <= reached(fits) and "kernels" not in reached(fits)
    assert {"kernels"} <= reached(kernel) and not {"train", "attacks"} & reached(kernel)
    assert {"data"} <= reached({"data": gt.data.DataSet("d", gt.data.TensorData(torch.zeros(2, 3), torch.zeros(2)),
                                                        gt.data.TensorData(torch.zeros(1, 3), torch.zeros(1)))})
    closure = store._closure(frozenset({"train"}))
    assert {"train", "models", "losses", "data"} <= closure and not {"attacks", "kernels", "checks", "gradients"} & closure


def test_claims_checks_and_grading_are_outside_the_key_because_no_run_can_reach_them():
    import ast

    folder = Path(gt.__file__).parent
    excluded = {name.removesuffix(".py") for name in store.NOT_IN_RUNS}
    for module in folder.glob("*.py"):
        if module.name in store.NOT_IN_RUNS or module.name == "__init__.py":  # the package offers them as gt.claim, ...
            continue
        imported = {alias.name.split(".")[-1] for node in ast.walk(ast.parse(module.read_text()))
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        imported |= {node.module.split(".")[-1] for node in ast.walk(ast.parse(module.read_text()))
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & excluded, module.name


def test_each_run_is_seeded_and_histories_round_trip(sweep_cache, small_mnist1d):
    def train(seed):
        model = gt.models.MLP(40, [8], 10)
        return {"history": gt.fit(model, small_mnist1d, epochs=1, seed=seed)}

    first = gt.sweep(train, grid=dict(seed=[0, 1]), name="histories")["history"]
    fresh = gt.sweep(train, grid=dict(seed=[0, 1]), name="histories", cache=False)["history"]
    assert isinstance(first[0], gt.History)
    assert first[0].final["test_loss"] == pytest.approx(fresh[0].final["test_loss"], rel=1e-6)
    assert first[0].final["test_loss"] != first[1].final["test_loss"]


def draw(seed):
    return {"draw": float(torch.rand(1))}


def test_another_gentools_seed_draw_is_another_run_seeded_with_the_shifted_seed(sweep_cache, monkeypatch):
    first = gt.sweep(draw, grid=dict(seed=[0, 1]), name="draws")
    monkeypatch.setenv("GENTOOLS_SEED", "1")
    shifted = gt.sweep(draw, grid=dict(seed=[0, 1]), name="draws")
    assert shifted.attrs["computed"] == 2  # not read from the other draw's cache
    assert set(first["draw"]).isdisjoint(shifted["draw"])
    gt.seed_everything(0)
    assert shifted["draw"][0] == float(torch.rand(1))  # the run was seeded with the shifted seed
    monkeypatch.setenv("GENTOOLS_SEED", "0")
    assert gt.sweep(draw, grid=dict(seed=[0, 1]), name="draws").attrs["cached"] == 2


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


def odd_fails(x, seed):
    if x % 2:
        raise ValueError(f"odd x={x}")
    return {"value": x}


def test_failed_runs_are_named_in_grid_order_and_the_others_kept(sweep_cache):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool, pytest.raises(gt.SweepIncomplete, match=r"3 of 6 runs .* failed: .*odd x=5") as failure:
        gt.sweep(odd_fails, grid=dict(x=[5, 1, 2, 3, 4, 6], seed=[0]), name="odd", executor=pool)
    assert failure.value.failed == [{"x": 5, "seed": 0}, {"x": 1, "seed": 0}, {"x": 3, "seed": 0}]
    assert len(list((sweep_cache / "odd").glob("*.json"))) == 3


# --- the cache key covers everything a run depends on -------------------------------------------------------

SCALE_FACTOR = 2


def helper(x):
    return x * SCALE_FACTOR


def uses_helper(x, seed):
    _record.calls.append((x, seed))
    return {"value": helper(x)}


def test_editing_a_global_the_run_reads_recomputes(sweep_cache, monkeypatch):
    first = gt.sweep(uses_helper, grid=dict(x=[1, 2], seed=[0]), name="globals")
    monkeypatch.setitem(globals(), "SCALE_FACTOR", 3)  # read by helper(), which the run calls
    second = gt.sweep(uses_helper, grid=dict(x=[1, 2], seed=[0]), name="globals")
    assert first["value"].tolist() == [2, 4] and second["value"].tolist() == [3, 6] and len(CALLS) == 4
    monkeypatch.setitem(globals(), "SCALE_FACTOR", 2)  # back: the first results are served again
    assert gt.sweep(uses_helper, grid=dict(x=[1, 2], seed=[0]), name="globals").attrs["cached"] == 2


def test_editing_a_helper_the_run_calls_recomputes(sweep_cache, monkeypatch):
    gt.sweep(uses_helper, grid=dict(x=[1], seed=[0]), name="helpers")
    monkeypatch.setitem(globals(), "helper", lambda x: x + 100)
    table = gt.sweep(uses_helper, grid=dict(x=[1], seed=[0]), name="helpers")
    assert table["value"].tolist() == [101] and table.attrs["computed"] == 1


def test_changing_the_data_a_run_closes_over_recomputes(sweep_cache):
    def make_run(data):
        def run(seed):
            _record.calls.append(seed)
            return {"total": float(data.train.x.sum())}
        return run

    data = gt.data.load("mnist1d", n_train=50, n_test=10, seed=0)
    gt.sweep(make_run(data), grid=dict(seed=[0]), name="data")
    assert gt.sweep(make_run(data), grid=dict(seed=[0]), name="data").attrs["cached"] == 1
    other = gt.data.corrupt_labels(data, 0.5, seed=1)  # same inputs, other labels: still another data set
    assert gt.sweep(make_run(other), grid=dict(seed=[0]), name="data").attrs["computed"] == 1
    assert len(CALLS) == 2


def test_a_value_without_a_content_hash_turns_the_cache_off_with_one_warning(sweep_cache):
    opaque = iter([1, 2, 3])

    def run(seed):
        _record.calls.append(seed)
        return {"first": next(iter([seed])), "opaque": opaque is not None}

    with pytest.warns(UserWarning, match="runs without its cache: the variable 'opaque'"):
        gt.sweep(run, grid=dict(seed=[0]), name="opaque")
    gt.sweep(run, grid=dict(seed=[0]), name="opaque")  # said once only; computed again, never served stale
    assert len(CALLS) == 2 and not (sweep_cache / "opaque").exists()


def test_comments_docstrings_and_positions_do_not_change_the_key():
    from gentools import fingerprint

    namespace_a, namespace_b, namespace_c = {}, {}, {}
    exec("def run(x):\n    'Square it.'\n    return x * x  # squared\n", namespace_a)
    exec("\n\n\ndef run(x):\n    # a comment, another docstring, other lines\n    '''Another text.'''\n    return x * x\n", namespace_b)
    exec("def run(x):\n    return x * x + 1\n", namespace_c)
    assert fingerprint.of(namespace_a["run"]) == fingerprint.of(namespace_b["run"]) != fingerprint.of(namespace_c["run"])
    assert store._code_only('"""Module."""\nx = 1  # one\ndef f():\n    """Doc."""\n    return x\n') == \
        store._code_only('"""Changed."""\nx = 1\n\n\ndef f():\n    return x\n') != store._code_only("x = 2\ndef f():\n    return x\n")


RUNNER = '''
import sys, time
import gentools as gt

OFFSET = {offset}

def helper(x):
    return x + OFFSET  # {comment}

def run(x, seed):
    with open(sys.argv[1], "a") as log:
        log.write(f"{{x}}\\n")
    time.sleep({pause})
    return {{"value": helper(x)}}

table = gt.sweep(run, grid=dict(x=[1, 2, 3], seed=[0]), name="processes")
print(table["value"].tolist(), table.attrs["computed"])
'''


def _runner(tmp_path, offset=10, comment="first", pause=0.0):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(offset=offset, comment=comment, pause=pause))
    return script


def _start(script, log, env):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, str(script), str(log)], env=env, stdout=subprocess.PIPE, text=True)


def test_a_new_process_finds_the_results_and_an_edit_recomputes(sweep_cache, tmp_path):
    import os

    env = {**os.environ, "GENTOOLS_PROGRESS": "0"}
    log = tmp_path / "calls.log"
    outputs = []
    for offset, comment in [(10, "first"), (10, "the comment changed"), (20, "the comment changed")]:
        process = _start(_runner(tmp_path, offset, comment), log, env)
        outputs.append(process.communicate(timeout=120)[0].strip())
    assert outputs == ["[11, 12, 13] 3", "[11, 12, 13] 0", "[21, 22, 23] 3"]
    assert len(log.read_text().split()) == 6


def test_two_processes_running_the_same_sweep_compute_each_run_once(sweep_cache, tmp_path):
    import os

    env = {**os.environ, "GENTOOLS_PROGRESS": "0"}
    log = tmp_path / "calls.log"
    script = _runner(tmp_path, pause=1.0)
    processes = [_start(script, log, env) for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0].split("]")[0] for process in processes]
    assert outputs == ["[11, 12, 13", "[11, 12, 13"]
    assert sorted(log.read_text().split()) == ["1", "2", "3"]  # each run once, whichever process took it


def test_library_functions_and_gentools_objects_have_fingerprints(sweep_cache):
    import numpy as np

    stopper = gt.EarlyStopping("valid_acc", patience=3, mode="max")
    summary = np.mean

    def run(seed):
        _record.calls.append(seed)
        return {"patience": stopper.patience, "mean": float(summary([seed, 1]))}

    gt.sweep(run, grid=dict(seed=[0]), name="objects")
    assert gt.sweep(run, grid=dict(seed=[0]), name="objects").attrs["cached"] == 1
    stopper.patience = 5  # an attribute the run reads
    assert gt.sweep(run, grid=dict(seed=[0]), name="objects").attrs["computed"] == 1


def test_what_a_gentools_function_closes_over_is_part_of_the_key():
    from gentools import fingerprint

    assert fingerprint.of(gt.regularize.l2_penalty(1e-4)) != fingerprint.of(gt.regularize.l2_penalty(1e-3))
    assert fingerprint.of(gt.regularize.l2_penalty(1e-4)) == fingerprint.of(gt.regularize.l2_penalty(1e-4))


def test_a_path_counts_by_its_name():
    from pathlib import Path

    from gentools import fingerprint

    assert fingerprint.of(Path("/data/a.pth")) == fingerprint.of(Path("/data/a.pth")) != fingerprint.of(Path("/data/b.pth"))


def rounds(x, seed):
    return [{"round": r, "value": x * r} for r in range(3)]


def test_a_run_may_return_several_rows(sweep_cache):
    table = gt.sweep(rounds, grid=dict(x=[1, 2], seed=[0]), name="rows")
    assert table[["x", "seed", "round", "value"]].values.tolist() == [[1, 0, 0, 0], [1, 0, 1, 1], [1, 0, 2, 2],
                                                                      [2, 0, 0, 0], [2, 0, 1, 2], [2, 0, 2, 4]]
    again = gt.sweep(rounds, grid=dict(x=[1, 2], seed=[0]), name="rows")
    assert again.attrs["cached"] == 2 and again.equals(table)
    with pytest.raises(TypeError, match="list of such dicts"):
        gt.sweep(lambda seed: 3.0, grid=dict(seed=[0]), name="scalar", cache=False)


def test_a_local_process_pool_gives_the_serial_table(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    data = gt.data.load("mnist1d", n_train=200, n_test=100, seed=0, device="cpu")
    options = dict(grid=dict(width=[4, 8, 16]), fixed=dict(data={"clean": data}, depth=2, epochs=2, measure_every=None, progress=False),
                   name="pool", cache=False, progress=False)
    serial = gt.sweep(gt.ensemble.fit_widths, **options)
    with gt.executors.processes(2) as pool:
        pooled = gt.sweep(gt.ensemble.fit_widths, executor=pool, **options)
    assert list(pooled["width"]) == [4, 8, 16]
    assert pooled.equals(serial)


def test_a_local_process_pool_runs_functions_no_worker_could_import(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    namespace: dict = {}
    exec("def scaled(x, factor):\n    return {'y': x * factor * offset}", {"offset": 10}, namespace)  # as a notebook cell would
    with gt.executors.processes(2) as pool:
        table = gt.sweep(namespace["scaled"], grid=dict(x=[1, 2, 3]), fixed=dict(factor=2), name="by-value", executor=pool)
    assert list(table["y"]) == [20, 40, 60] and table.attrs["computed"] == 3
    again = gt.sweep(namespace["scaled"], grid=dict(x=[1, 2, 3]), fixed=dict(factor=2), name="by-value")
    assert again.attrs["cached"] == 3  # the caller wrote the cache


def test_gentools_workers_sends_the_points_to_local_processes_and_keeps_what_cannot_travel_here(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    monkeypatch.setenv("GENTOOLS_WORKERS", "2")
    table = gt.sweep(gt.ensemble.fit_widths, grid=dict(width=[3, 5]), name="workers", progress=False,
                     fixed=dict(data={"clean": gt.data.load("mnist1d", n_train=100, n_test=50, seed=0, device="cpu")},
                                epochs=1, measure_every=None, progress=False))
    pids = gt.sweep(lambda x: {"pid": os.getpid()}, grid=dict(x=[1, 2, 3, 4]), name="pids", cache=False)
    assert list(table["width"]) == [3, 5] and os.getpid() not in set(pids["pid"])
    lock = threading.Lock()  # cannot be pickled: the sweep says so and runs here

    def locked(x):
        with lock:
            return {"pid": os.getpid()}

    with pytest.warns(UserWarning, match="runs in this process"):
        here = gt.sweep(locked, grid=dict(x=[1, 2]), name="locked", cache=False)
    assert set(here["pid"]) == {os.getpid()}
    before = torch.get_num_threads()
    alone = gt.sweep(lambda x: {"threads": torch.get_num_threads(), "pid": os.getpid()}, grid=dict(x=[1]), name="one",
                     cache=False)  # one run: here, with the cores to itself
    assert alone["pid"][0] == os.getpid() and alone["threads"][0] == 2 and torch.get_num_threads() == before
    monkeypatch.setenv("GENTOOLS_WORKERS", "two")
    with pytest.raises(ValueError, match="whole number"):
        gt.config.workers()


def _running(pid: int) -> bool:
    """Whether a process still runs, from the kernel's own account (an exited child may wait to be reaped, and
    Process.is_alive can miss the exit when another thread reaped it)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_an_interrupted_sweep_stops_the_sessions_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    monkeypatch.setenv("GENTOOLS_WORKERS", "2")
    from gentools import executors

    def interrupt(*args, **kwargs):
        yield 0, [{"y": 1}], None  # the first task's results, one per point
        raise RuntimeError("interrupted")  # as Ctrl-C would (a KeyboardInterrupt would stop pytest itself)

    executors.discard_shared(2)  # a fresh pool whose workers have started
    pool = executors.shared(2)
    assert pool.submit(abs, -1).result() == 1
    processes = list(pool._pool._processes.values())
    assert processes
    with monkeypatch.context() as patched, pytest.raises(RuntimeError, match="interrupted"):
        patched.setattr(executors, "completed", interrupt)
        gt.sweep(lambda x: {"y": x}, grid=dict(x=[1, 2, 3]), name="interrupted")
    assert 2 not in executors._SHARED  # the next sweep starts fresh workers
    assert not any(_running(process.pid) for process in processes)
    assert gt.sweep(lambda x: {"y": x}, grid=dict(x=[1, 2, 3]), name="interrupted").attrs["cached"] == 1  # the first result was kept


def test_fitted_trains_once_and_gives_back_the_same_model(sweep_cache, small_mnist1d, monkeypatch):
    def build():
        return gt.models.MLP(40, [16], 10)

    gt.seed_everything(3)
    by_hand = build()
    by_hand_history = gt.fit(by_hand, small_mnist1d, epochs=2, lr=1e-2, seed=3)
    model, history = gt.fitted(build, small_mnist1d, name="one-model", seed=3, epochs=2, lr=1e-2)
    untimed = lambda final: {key: value for key, value in final.items() if key != "time"}  # noqa: E731
    assert untimed(history.final) == untimed(by_hand_history.final)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), by_hand.state_dict().values()))
    monkeypatch.setenv("GENTOOLS_CACHED_ONLY", "1")  # from here on, any training raises
    again, again_history = gt.fitted(build, small_mnist1d, name="one-model", seed=3, epochs=2, lr=1e-2)
    assert again_history.final == history.final
    assert gt.evaluate(again, small_mnist1d.test, n_classes=10) == gt.evaluate(model, small_mnist1d.test, n_classes=10)
    with pytest.raises(gt.train.TrainingOutsideCache, match="GENTOOLS_CACHED_ONLY"):
        gt.fitted(build, small_mnist1d, name="one-model", seed=3, epochs=3, lr=1e-2)  # another setting: not cached


def test_fitted_restores_a_pruned_models_masked_weights(sweep_cache, small_mnist1d):
    def build():
        net = gt.models.MLP(40, [16], 10)
        gt.prune.apply_masks(net, gt.prune.magnitude_masks(net, 0.5))
        return net

    trained, _ = gt.fitted(build, small_mnist1d, name="pruned", epochs=2)
    read, _ = gt.fitted(build, small_mnist1d, name="pruned", epochs=2)
    for a, b in zip(gt.prune.layers(trained).values(), gt.prune.layers(read).values()):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.weight, a.weight_orig * a.weight_mask)


def test_a_run_here_leaves_the_random_generators_as_it_found_them(sweep_cache):
    def noisy(seed):
        return {"draw": float(torch.rand(1))}

    gt.seed_everything(11)
    gt.sweep(noisy, grid=dict(seed=[0, 1]), name="noisy")  # computed here
    computed = float(torch.rand(1))
    gt.seed_everything(11)
    gt.sweep(noisy, grid=dict(seed=[0, 1]), name="noisy")  # read from the cache
    assert float(torch.rand(1)) == computed


def test_adding_a_point_to_the_grid_computes_that_point_only(sweep_cache):
    gt.sweep(square, grid=dict(x=[1, 2], seed=[0]), name="grow")
    grown = gt.sweep(square, grid=dict(x=[1, 2, 3], seed=[0]), name="grow")
    assert grown.attrs["computed"] == 1 and CALLS == [(1, 0), (2, 0), (3, 0)]


def test_a_packed_run_function_gets_its_points_in_packs_and_each_point_is_cached(sweep_cache):
    calls = CALLS  # logged in a module (see _record), so that the log is not part of the key

    @gt.packed(keys=("x", "seed"), packs=lambda points, offset: ([i for i, p in enumerate(points) if p["x"] < 3],
                                                                  (i for i, p in enumerate(points) if p["x"] >= 3)))
    def squares(points, offset):
        _record.calls.append([(p["x"], p["seed"]) for p in points])
        return [{"value": p["x"] ** 2 + offset} for p in points]

    table = gt.sweep(squares, grid=dict(x=[1, 2, 3, 3], seed=[0]), name="packed", fixed=dict(offset=1))
    assert table["value"].tolist() == [2, 5, 10, 10] and table.attrs["computed"] == 3
    assert calls == [[(1, 0), (2, 0)], [(3, 0)]]  # two packs (a generator is a pack too); the repeated 3 runs once
    again = gt.sweep(squares, grid=dict(x=[1, 2, 3, 4], seed=[0]), name="packed", fixed=dict(offset=1))
    assert again.attrs["computed"] == 1 and calls[-1] == [(4, 0)]
    with pytest.raises(ValueError, match="y would label runs it never saw"):
        gt.sweep(squares, grid=dict(x=[1], y=[2]), name="packed", fixed=dict(offset=1))
    with pytest.raises(TypeError, match="needs the point keys"):
        gt.packed(squares)

    @gt.packed(keys=("x",), packs=lambda points: [[0]])
    def loses_a_point(points):
        return [{"value": 0} for _ in points]

    with pytest.raises(ValueError, match="must split the points"):
        gt.sweep(loses_a_point, grid=dict(x=[1, 2]), name="lost")

    @gt.packed(keys=("x",))
    def one_short(points):
        return [{"value": 0}]

    with pytest.raises(TypeError, match="one result per point"):
        gt.sweep(one_short, grid=dict(x=[1, 2]), name="short")


def test_an_exercise_checks_own_reference_runs_may_train_under_cached_only(monkeypatch, small_mnist1d):
    monkeypatch.setenv("GENTOOLS_CACHED_ONLY", "1")
    with pytest.raises(gt.train.TrainingOutsideCache):
        gt.fit(gt.models.MLP(40, [4], 10), small_mnist1d, epochs=1)
    with gt.train.uncached_training():
        gt.fit(gt.models.MLP(40, [4], 10), small_mnist1d, epochs=1)
    with pytest.raises(gt.train.TrainingOutsideCache):  # and only inside
        gt.fit(gt.models.MLP(40, [4], 10), small_mnist1d, epochs=1)
