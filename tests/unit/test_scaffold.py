"""`raytune-suite new`: writes a NAME.py + NAME.yaml per task that validate as written, and never overwrites."""

import pytest

from raytune_suite.cli import main
from raytune_suite.config import ignored_train_keys, load_config
from raytune_suite.experiments import TASKS
from raytune_suite.scaffold import TEMPLATES


def test_every_task_has_a_template():
    assert set(TEMPLATES) == set(TASKS)


@pytest.mark.parametrize("task", list(TEMPLATES))
def test_new_writes_an_experiment_that_validates(tmp_path, capsys, task):
    assert main(["new", "my_model", "--task", task, "--dir", str(tmp_path / "sub")]) == 0
    assert f"wrote {tmp_path / 'sub' / 'my_model.py'}" in capsys.readouterr().out
    yaml_path = tmp_path / "sub" / "my_model.yaml"
    assert main(["validate", str(yaml_path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("ok: my_model") and out.err == ""
    cfg = load_config(yaml_path)
    assert cfg.tune.search == "hyperopt" and cfg.tune.scheduler == "asha"
    assert {"optimizer", "lr", "schedule", "weight_decay"} <= set(cfg.space["train"])
    assert cfg.space["train"]["lr"].type == "loguniform"
    assert cfg.tune.metric == ("val_accuracy" if task == "classification" else "val_rmse")
    assert ignored_train_keys(cfg) == []


def test_the_written_model_trains_one_step_on_its_own_data(tmp_path):
    import torch

    from raytune_suite.experiments import load_experiment

    for task in TEMPLATES:
        main(["new", f"m_{task}", "--task", task, "--dir", str(tmp_path)])
        experiment = load_experiment(str(tmp_path / f"m_{task}.py"))
        data = experiment.load_data(experiment.DataConfig(), 0)
        model = experiment.build_model(experiment.ModelConfig(), data.info)
        loss = experiment.task.loss(model(data.train_x[:8]), data.train_y[:8])
        loss.backward()
        assert torch.isfinite(loss)
        assert data.train_y.dtype == (torch.int64 if task == "classification" else torch.float32)


@pytest.mark.parametrize("existing", ["taken.py", "taken.yaml"])
def test_new_refuses_to_overwrite_in_one_line(tmp_path, capsys, existing):
    (tmp_path / existing).write_text("mine\n")
    assert main(["new", "taken", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    path = tmp_path / existing
    assert err == f"error: new: {path} already exists; pick another NAME or --dir (nothing was written)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]
    assert (tmp_path / existing).read_text() == "mine\n"


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["new", "my-model"], "error: new my-model: not a Python identifier"),
        (["new", "x", "--task", "ranking"], "error: new --task ranking: no template; choose one of: classification, "),
    ],
)
def test_new_bad_input_is_one_line(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expect) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_new_into_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["new", "x", "--dir", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.startswith("error: new --dir")
