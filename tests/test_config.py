import pytest
import torch

import gentools as gt


def test_default_scale_is_book(monkeypatch):
    monkeypatch.delenv("GENTOOLS_SCALE")
    assert gt.scale() == "book"
    assert gt.pick(tiny=1, book=2, paper=3) == 2


@pytest.mark.parametrize("scale, expected", [("tiny", 1), ("book", 2), ("paper", 3), (" Paper ", 3)])
def test_pick_follows_the_scale(monkeypatch, scale, expected):
    monkeypatch.setenv("GENTOOLS_SCALE", scale)
    assert gt.pick(tiny=1, book=2, paper=3) == expected


def test_paper_falls_back_to_book(monkeypatch):
    monkeypatch.setenv("GENTOOLS_SCALE", "paper")
    assert gt.pick(tiny=1, book=2) == 2


def test_unknown_scale_says_what_to_use(monkeypatch):
    monkeypatch.setenv("GENTOOLS_SCALE", "huge")
    with pytest.raises(ValueError, match=r"GENTOOLS_SCALE='huge' is not a scale\. Use one of tiny, book, paper"):
        gt.pick(tiny=1, book=2)


def test_folders_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("GENTOOLS_DATA", str(tmp_path / "d"))
    assert gt.config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert gt.config.data_dir() == tmp_path / "d" and (tmp_path / "d").is_dir()


def test_default_folders_are_under_home(monkeypatch, tmp_path):
    for name in ("GENTOOLS_CACHE", "GENTOOLS_DATA", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gt.config.cache_dir() == tmp_path / ".cache" / "gentools"
    assert gt.config.data_dir() == tmp_path / ".local" / "share" / "gentools" / "data"


def test_progress_is_quiet_at_tiny_scale(monkeypatch):
    assert gt.config.show_progress() is False
    monkeypatch.setenv("GENTOOLS_SCALE", "book")
    assert gt.config.show_progress() is True
    monkeypatch.setenv("GENTOOLS_PROGRESS", "0")
    assert gt.config.show_progress() is False


def test_device_override_and_errors(monkeypatch):
    assert gt.device.device() == torch.device("cpu")
    monkeypatch.setenv("GENTOOLS_DEVICE", "toaster")
    with pytest.raises(ValueError, match="not a device name"):
        gt.device.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("GENTOOLS_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no such device"):
            gt.device.device()


def test_seed_everything_repeats_random_numbers():
    gt.seed_everything(3)
    first = torch.rand(3), gt.models.MLP(4, [5], 2)[1].weight.clone()
    gt.seed_everything(3)
    second = torch.rand(3), gt.models.MLP(4, [5], 2)[1].weight.clone()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_setup_reports_scale_and_device(capsys):
    info = gt.setup(seed=1)
    assert info["scale"] == "tiny" and info["device"] == "cpu"
    assert "scale tiny" in capsys.readouterr().out


def test_gentools_seed_shifts_every_seed_a_chapter_uses_and_keeps_the_reference_data(monkeypatch):
    import gentools as gt

    def draws():
        data = gt.data.load("digits", test_fraction=0.25, seed=0)
        gt.seed_everything(0)
        return (torch.rand(3), torch.randperm(10, generator=gt.device.generator(0)), data.test.y[:20].clone(),
                gt.data.corrupt_labels(data, 0.5, seed=1).train.y[:50].clone(), gt.models.MLP(4, [3], 2)[1].weight.detach().clone(),
                gt.data.load("mnist1d", n_train=100, n_test=10).train.x[:2].clone())

    default = draws()
    assert all(torch.equal(a, b) for a, b in zip(default, draws()))  # repeatable
    monkeypatch.setenv("GENTOOLS_SEED", "1")
    shifted = draws()
    assert all(not torch.equal(a, b) for a, b in zip(default[:5], shifted[:5]))  # init, order, splits, noise: new
    assert torch.equal(default[5], shifted[5])  # the reference data set itself stays fixed
    monkeypatch.setenv("GENTOOLS_SEED", "0")
    assert all(torch.equal(a, b) for a, b in zip(default, draws()))  # seed draw 0 is the book's own seeds


def test_gentools_seed_must_be_a_whole_number(monkeypatch):
    from gentools import config

    monkeypatch.setenv("GENTOOLS_SEED", "-1")
    with pytest.raises(ValueError, match="GENTOOLS_SEED='-1' must be a whole number"):
        config.seed_offset()
