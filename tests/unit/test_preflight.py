"""Each named preflight check on its own, on real files, sockets and configs (the corpus covers them end to end)."""

from __future__ import annotations

import argparse
import http.server
import inspect
import sys
import threading
from pathlib import Path

import pytest

from raytune_suite.check import preflight
from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from raytune_suite.run import sweep_folder
from raytune_suite.track.runmap import RUN_MAP_FILE
from tests.bad_inputs.test_corpus import free_port
from tests.conftest import EXPERIMENTS

MNIST = str(EXPERIMENTS / "mnist_cnn.yaml")


def state(**args) -> preflight.Preflight:
    return preflight.Preflight(argparse.Namespace(**args))


def configured(*overrides: str, **args) -> preflight.Preflight:
    """A state whose typed config is already loaded, as the target checks see it."""
    p = state(**args)
    p.cfg = load_config(MNIST, list(overrides))
    return p


def refused(check, p: preflight.Preflight, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        check(p)
    assert "\n" not in str(err.value)


@pytest.fixture
def mlflow_like_server():
    """A local HTTP server that answers /health like an MLflow server does."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# -- CLI values ------------------------------------------------------------------------------------------------
def test_check_num_samples_refuses_fewer_than_one():
    preflight.check_num_samples(state(num_samples=None))
    preflight.check_num_samples(state(num_samples=1))
    refused(preflight.check_num_samples, state(num_samples=0), r"^--num-samples 0: must be at least 1")


def test_check_num_cpus_refuses_zero_which_would_hang_for_ever():
    preflight.check_num_cpus(state(num_cpus=2))
    refused(preflight.check_num_cpus, state(num_cpus=0), r"^--num-cpus 0: must be at least 1; omit it")
    refused(preflight.check_num_cpus, state(num_cpus=-1), r"^--num-cpus -1")


def test_check_num_gpus_accepts_zero_and_refuses_negative():
    preflight.check_num_gpus(state(num_gpus=0))
    refused(preflight.check_num_gpus, state(num_gpus=-1), r"^--num-gpus -1: must be 0 or more")


@pytest.mark.parametrize("port", [1, 5000, 65535])
def test_check_port_accepts_1_to_65535(port):
    preflight.check_port(state(port=port))


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_check_port_refuses_anything_else(port):
    refused(preflight.check_port, state(port=port), rf"^--port {port}: not a port; pick one in 1-65535")


@pytest.mark.parametrize("address", [None, "auto", "10.0.0.1:6379", "head:6379", "ray://head:10001", "ray://head"])
def test_check_ray_address_accepts_what_ray_init_joins(address):
    preflight.check_ray_address(state(address=address))


@pytest.mark.parametrize(
    ("address", "match"),
    [
        ("local", r"omit --address to start a private local Ray"),
        ("http://head:8265", r"a URL is the Jobs API; use `raytune-suite submit`"),
        ("head", r"expected HOST:PORT"),
        ("head:70000", r"expected HOST:PORT"),
        ("head:port", r"expected HOST:PORT"),
        ("ray://head:0", r"^--address ray://head:0: expected HOST\[:PORT\] with a port in 1-65535"),
        ("grpc://head:1", r"unknown scheme"),
    ],
)
def test_check_ray_address_refuses_other_forms_with_the_accepted_ones(address, match):
    refused(preflight.check_ray_address, state(address=address), match)


def test_check_ray_address_local_is_a_private_instance_instead_of_a_resumed_sweeps_address():
    preflight.check_ray_address(state(address="local", resume="ray_results/sweep"))
    assert not preflight.joins_cluster(state(address="local", resume=""))


@pytest.mark.parametrize("address", ["http://127.0.0.1:8265", "https://ray.example.com", "http://head:8265/"])
def test_check_jobs_address_accepts_http_urls(address):
    preflight.check_jobs_address(state(address=address))


@pytest.mark.parametrize("address", ["not a url", "ftp://h:21", "http://h:70000", "http://:8265", "127.0.0.1:8265"])
def test_check_jobs_address_refuses_anything_but_http_host_port(address):
    refused(preflight.check_jobs_address, state(address=address), r"^--address .*(http\(s\) URL|HOST\[:PORT\])")


@pytest.mark.parametrize(
    "uri",
    [
        None,
        "http://h:5000",
        "https://h",
        "postgresql+psycopg2://u@h/db",
        "mysql://h/db",
        "databricks",
        "sqlite:///x.db",
    ],
)
def test_check_mlflow_uri_flag_accepts_mlflows_schemes(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preflight.check_mlflow_uri_flag(state(mlflow_uri=uri))


def test_check_mlflow_uri_flag_refuses_unknown_schemes_file_stores_and_missing_sqlite_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    refused(preflight.check_mlflow_uri_flag, state(mlflow_uri="bogus://x"), r"unknown scheme 'bogus'")
    refused(preflight.check_mlflow_uri_flag, state(mlflow_uri="./mlruns"), r"a file store, which MLflow 3 refuses")
    refused(preflight.check_mlflow_uri_flag, state(mlflow_uri=f"sqlite:///{tmp_path}/no/m.db"), r"no folder")


def test_a_file_store_is_accepted_where_mlflow_is_told_to_allow_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    preflight.check_mlflow_uri_flag(state(mlflow_uri="file:///tmp/mlruns"))


# -- the config file -------------------------------------------------------------------------------------------
def test_check_config_file_reads_a_mapping_and_refuses_duplicate_keys(tmp_path):
    p = state(config=MNIST)
    preflight.check_config_file(p)
    assert p.raw["experiment"] == "mnist_cnn"
    dup = tmp_path / "dup.yaml"
    dup.write_text("experiment: mnist_cnn\ntrain: {lr: 0.1}\ntune: {}\ntrain: {epochs: 2}\n")
    refused(preflight.check_config_file, state(config=str(dup)), r"dup.yaml: line 4: duplicate key 'train'")


def test_check_overrides_applies_set_and_num_samples_and_names_bad_yaml():
    p = state(config=MNIST, overrides=["train.lr=0.5"], num_samples=3)
    preflight.check_config_file(p)
    preflight.check_overrides(p)
    assert p.raw["train"]["lr"] == 0.5 and p.raw["tune"]["num_samples"] == 3
    p = state(config=MNIST, overrides=["train.lr=[unclosed"], num_samples=None)
    preflight.check_config_file(p)
    refused(preflight.check_overrides, p, r"^--set train.lr: '\[unclosed' is not valid YAML")


def test_check_finite_numbers_names_the_path_of_a_non_finite_value():
    preflight.check_finite_numbers(_raw({"train": {"lr": 0.1}}))
    refused(preflight.check_finite_numbers, _raw({"space": {"train": {"lr": {"values": [1, float("nan")]}}}}),
            r"^space.train.lr.values\[1\]: nan is not a finite number")  # fmt: skip


def _raw(raw: dict) -> preflight.Preflight:
    p = state()
    p.raw = raw
    return p


# -- the typed config ------------------------------------------------------------------------------------------
def test_check_typed_config_returns_the_validated_config():
    p = _raw({"name": "x", "experiment": "mnist_cnn", "train": {"epochs": 2}})
    preflight.check_typed_config(p)
    assert p.cfg.train.epochs == 2 and p.cfg.tune.metric == "val_accuracy"
    refused(preflight.check_typed_config, _raw({"name": "x", "experiment": "mnist_cnn", "train": {"lr": 0}}),
            r"^train.lr: Input should be greater than 0")  # fmt: skip


def test_check_scheduler_fits_searcher_refuses_pbt_with_hyperopt_or_without_continuous_train_parameters():
    preflight.check_scheduler_fits_searcher(configured())
    refused(preflight.check_scheduler_fits_searcher, configured("tune.scheduler=pbt"), r"pbt proposes configs itself")
    no_continuous = configured("tune.scheduler=pbt", "tune.search=random", "space={model: {shift: {type: randint, "
                               "low: 0, high: 2}}}")  # fmt: skip
    refused(preflight.check_scheduler_fits_searcher, no_continuous, r"pbt mutates continuous train parameters")


def test_check_configured_mlflow_uri_checks_the_config_then_the_environment_unless_a_flag_wins(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preflight.check_configured_mlflow_uri(configured("mlflow.tracking_uri=bogus://x", mlflow_uri="http://h:5000"))
    refused(preflight.check_configured_mlflow_uri, configured("mlflow.tracking_uri=bogus://x", mlflow_uri=None),
            r"^mlflow.tracking_uri bogus://x: unknown scheme")  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nope://y")
    refused(preflight.check_configured_mlflow_uri, configured(mlflow_uri=None), r"^\$MLFLOW_TRACKING_URI nope://y")


# -- the target ------------------------------------------------------------------------------------------------
def test_check_resources_fit_compares_a_trial_with_the_local_instance():
    preflight.check_resources_fit(configured(address=None, num_cpus=1, num_gpus=None))
    refused(preflight.check_resources_fit, configured("tune.resources.cpu=2", address=None, num_cpus=1, num_gpus=None),
            r"^tune.resources.cpu: a trial needs 2 CPUs")  # fmt: skip
    refused(preflight.check_resources_fit, configured("tune.resources.gpu=0.5", address=None, num_cpus=2, num_gpus=0),
            r"^tune.resources.gpu: a trial needs 0.5 GPUs but --num-gpus is 0")  # fmt: skip
    # A cluster's nodes are unknown before Ray connects: nothing to compare.
    preflight.check_resources_fit(configured("tune.resources.cpu=64", address="auto", num_cpus=None, num_gpus=None))


def test_check_tracking_uri_fits_cluster_refuses_a_local_store_for_a_cluster(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preflight.check_tracking_uri_fits_cluster(configured(address=None, mlflow_uri=None))
    preflight.check_tracking_uri_fits_cluster(configured(address="auto", mlflow_uri="http://h:5000"))
    refused(preflight.check_tracking_uri_fits_cluster, configured(address="headnode:6379", mlflow_uri=None),
            r"^mlflow.tracking_uri: sqlite:///.*mlflow.db is local to this machine")  # fmt: skip
    refused(preflight.check_tracking_uri_fits_cluster, configured(address="ray://127.0.0.1:10001", mlflow_uri=None),
            r"is local to this machine")  # fmt: skip


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:16200", "localhost:6379", "[::1]:6379"])
def test_check_tracking_uri_fits_cluster_lets_a_ray_on_this_machine_use_a_local_store(monkeypatch, address):
    # A sweep against `ray start --head` on this machine (the fast way to iterate) was refused: its driver, which
    # alone writes to MLflow, runs here.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preflight.check_tracking_uri_fits_cluster(configured(address=address, mlflow_uri=None))


def test_check_mlflow_server_answers_within_seconds_or_says_so(mlflow_like_server):
    preflight.check_mlflow_server_answers(configured(mlflow_uri=mlflow_like_server))
    preflight.check_mlflow_server_answers(configured(mlflow_uri="sqlite:///x.db"))  # no server to ask
    closed = f"http://127.0.0.1:{free_port()}"
    refused(preflight.check_mlflow_server_answers, configured(mlflow_uri=closed),
            rf"^--mlflow-uri {closed}: no MLflow server answers there \(.*\) within 3s")  # fmt: skip


def test_check_storage_creates_and_probes_the_folder(tmp_path):
    preflight.check_storage(configured(storage=str(tmp_path / "new" / "results")))
    assert (tmp_path / "new" / "results").is_dir() and not any((tmp_path / "new" / "results").iterdir())
    (tmp_path / "afile").write_text("x")
    refused(preflight.check_storage, configured(storage=str(tmp_path / "afile" / "sub")),
            r"^--storage .*afile/sub: cannot write there \(Not a directory\)")  # fmt: skip
    refused(preflight.check_storage, configured(f"run.storage={tmp_path / 'afile'}", storage=None),
            r"^run.storage .*afile: cannot write there")  # fmt: skip


def test_check_resume_target_needs_a_sweep_to_resume(tmp_path):
    preflight.check_resume_target(configured(resume=None, storage=str(tmp_path)))
    refused(preflight.check_resume_target, configured(resume=str(tmp_path), storage=None),
            r"^--resume .*: not a sweep folder \(no mlflow_runs.json\)")  # fmt: skip
    refused(preflight.check_resume_target, configured(resume="", storage=str(tmp_path / "none")),
            r"^--resume: no sweep of mnist_cnn under .*none")  # fmt: skip
    (tmp_path / "mnist_cnn-1").mkdir()
    (tmp_path / "mnist_cnn-1" / RUN_MAP_FILE).write_text("{}")
    refused(preflight.check_resume_target, configured(resume="", storage=str(tmp_path)),
            r"^--resume .*mnist_cnn-1: no sweep_config.yaml there")  # fmt: skip


def test_check_resume_target_hands_the_later_checks_the_sweeps_own_config_and_flags(tmp_path):
    from raytune_suite.run.sweep_folder import save_config, save_flags

    sweep = tmp_path / "mnist_cnn-1"
    sweep.mkdir()
    (sweep / RUN_MAP_FILE).write_text("{}")
    save_config(load_config(MNIST, ["train.epochs=2", "data.dataset=digits"]), str(sweep))
    save_flags({"num_cpus": 1, "num_gpus": None, "address": "auto", "register_model": None}, str(sweep))
    p = configured(resume="", storage=str(tmp_path), num_cpus=None, address="127.0.0.1:6390")
    preflight.check_resume_target(p)
    assert (p.cfg.train.epochs, p.cfg.data["dataset"]) == (2, "digits")  # the saved config, its --set values in
    assert (p.args.num_cpus, p.args.address) == (1, "127.0.0.1:6390")  # a flag given again wins
    assert p.resumed == {"num_cpus": 1}


def test_check_storage_probes_remote_storage_and_names_what_to_check(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    refused(preflight.check_storage, configured(storage="s3://bucket/sweeps"),
            r"^--storage s3://bucket/sweeps: not writable \(.*; check the bucket, the endpoint")  # fmt: skip


# -- report ----------------------------------------------------------------------------------------------------
def test_check_top_k_refuses_fewer_than_one():
    preflight.check_top_k(state(top_k=1))
    refused(preflight.check_top_k, state(top_k=0), r"^--top-k 0: must be at least 1")


def test_check_report_out_needs_a_writable_folder_without_creating_it(tmp_path):
    preflight.check_report_out(state(out=str(tmp_path / "a" / "b")))
    assert not (tmp_path / "a").exists()
    (tmp_path / "afile").write_text("x")
    refused(preflight.check_report_out, state(out=str(tmp_path / "afile" / "r")), r"afile is a file, not a folder")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys")
def test_check_report_out_probes_the_folder_even_where_os_access_says_yes(tmp_path, monkeypatch):
    """As root, os.access says /sys is writable; only a write tells (issue #20: a traceback from write_report)."""
    refused(
        preflight.check_report_out,
        state(out="/sys/raytune_report"),
        r"^--out /sys/raytune_report: cannot write in /sys \(",
    )
    assert not Path("/sys/raytune_report").exists()
    monkeypatch.chdir("/sys")  # the default ./report-<sweep> lands here
    refused(preflight.check_report_out, state(out=None), r"^--out \(default ./report-<sweep>\): cannot write in /sys")
    monkeypatch.chdir(tmp_path)
    preflight.check_report_out(state(out=None))
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing


def test_check_ui_store_needs_a_store_the_server_can_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preflight.check_ui_store(state(mlflow_uri=None))  # ./mlflow.db in a writable folder
    preflight.check_ui_store(state(mlflow_uri="http://127.0.0.1:5000"))  # a server's own business
    refused(preflight.check_ui_store, state(mlflow_uri=f"sqlite:///{tmp_path}"), r"is a folder; name the SQLite file")
    (tmp_path / "afile").write_text("x")
    refused(preflight.check_ui_store, state(mlflow_uri=f"sqlite:///{tmp_path}/afile/m.db"), r"afile is a file, not")
    if Path("/sys").is_dir():
        refused(
            preflight.check_ui_store,
            state(mlflow_uri="sqlite:////sys/m.db"),
            r"^--mlflow-uri sqlite:////sys/m.db: cannot write in /sys",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_check_schema_answers_unknown_keys_types_and_the_train_space_without_the_experiment():
    """`experiment: no_such_module` is never imported: these answers need only the YAML."""
    raw = {"name": "x", "experiment": "no_such_module"}
    for extra, expected in [
        ({"trian": 1}, r"^trian: unknown key; valid keys: name, experiment"),
        ({"train": {"lr": -1}}, r"^train.lr: Input should be greater than 0"),
        ({"space": {"train": {"beta3": {"type": "choice", "values": [1]}}}}, r"^space.train.beta3: train has no param"),
        ({"space": {"train": {"lr": {"type": "uniform", "low": 1, "high": 0.1}}}}, r"^space.train.lr: low \(1\) must"),
        ({"tune": {"asha": {"grace_period": 9}}, "train": {"epochs": 2}}, r"^tune.asha.grace_period: 9 is more than"),
    ]:
        p = state()
        p.raw = {**raw, **extra}
        refused(preflight.check_schema, p, expected)
    p = state()
    p.raw = {**raw, "train": {"optimizer": "sgdd"}, "space": {"model": {"nope": {"type": "choice", "values": [1]}}}}
    preflight.check_schema(p)  # registry names and the experiment's sections: validate_config's, after the import


def test_the_schema_check_runs_before_the_experiment_is_imported():
    for checks in (preflight.CHECKS["validate"], preflight.CHECKS["run"], preflight.CHECKS["submit"]):
        assert checks.index(preflight.check_schema) < checks.index(preflight.check_typed_config)


def test_check_report_target_resolves_a_sweep_folder_and_never_creates_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / RUN_MAP_FILE).write_text(f'{{"parent_run_id": "abc", "tracking_uri": "sqlite:///{tmp_path}/s.db"}}')
    refused(preflight.check_report_target, state(target=str(sweep), mlflow_uri=None), r"no MLflow store at .*s.db")
    (tmp_path / "s.db").touch()
    p = state(target=str(sweep), mlflow_uri=None)
    preflight.check_report_target(p)
    assert p.report_target == (f"sqlite:///{tmp_path}/s.db", "abc")
    refused(preflight.check_report_target, state(target="nope", mlflow_uri=None), r"not an MLflow run id")
    assert not (tmp_path / "mlflow.db").exists()


def test_check_report_run_exists_names_an_unknown_run(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("x"))
    p = state(target=run.info.run_id)
    p.report_target = (uri, run.info.run_id)
    preflight.check_report_run_exists(p)
    p.report_target = (uri, "0" * 32)
    refused(preflight.check_report_run_exists, p, rf"^report {run.info.run_id}: no run 0{{32}} in sqlite:///")


# -- the registry and the runner -------------------------------------------------------------------------------
def test_every_registered_check_has_a_unit_test_here():
    tests = [
        name for name, _ in inspect.getmembers(sys.modules[__name__], inspect.isfunction) if name.startswith("test_")
    ]
    checks = {check.__name__ for checks in preflight.CHECKS.values() for check in checks}
    untested = [name for name in checks if not any(t.startswith(f"test_{name}_") for t in tests)]
    assert not untested


def test_validate_and_run_share_every_config_check_and_storage_comes_last():
    run = preflight.CHECKS["run"]
    assert all(check in run for check in preflight.CHECKS["validate"])
    assert run[-1] is preflight.check_storage  # the only check that writes


def test_an_unexpected_exception_in_a_check_is_one_line_naming_its_type(monkeypatch):
    def check_that_breaks(p):
        raise KeyError("surprise\nsecond line")

    monkeypatch.setitem(preflight.CHECKS, "ui", [check_that_breaks])
    with pytest.raises(ConfigError, match=r"^preflight check_that_breaks: unexpected KeyError: .*surprise") as err:
        preflight.run_checks("ui", argparse.Namespace())
    assert "\n" not in str(err.value)


def test_a_yaml_error_needs_no_heavy_import(tmp_path):
    """The first checks import nothing heavy: a broken YAML answers before torch, Ray or MLflow load."""
    import subprocess

    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: mnist_cnn\ntrain: {lr: [1, 2}\n")
    code = (
        "import sys; from raytune_suite import cli; rc = cli.main(['validate', sys.argv[1]]); "
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'pandas') if m in sys.modules]; print(rc, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr


@pytest.mark.parametrize(
    "override",
    ["trian=1", "train.optimiser=adam", "train.lr=-1", "space.train.beta3={type: choice, values: [1]}",
     "tune.num_samples=0", "space.train.lr.low=0.1"],
)  # fmt: skip
def test_an_error_the_yaml_alone_decides_needs_no_heavy_import(override):
    """Issue #20: an unknown key, a type or range error, an unknown train parameter of the space answered before the
    experiment module (and torch) is imported (2.5-3.8 s before, as a process)."""
    import subprocess

    code = (
        "import sys; from raytune_suite import cli; rc = cli.main(['validate', sys.argv[1], '--set', sys.argv[2]]); "
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'pandas', 'sklearn') if m in sys.modules]; print(rc, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code, MNIST, override], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr


def test_a_run_id_target_keeps_the_given_store():
    assert sweep_folder.resolve_report_target("0" * 32, "sqlite:///s.db") == ("sqlite:///s.db", "0" * 32)


def test_check_experiment_runs_takes_a_step_and_names_the_experiments_own_line(tmp_path):
    preflight.check_experiment_runs(configured("data.dataset=digits", "data.subset=200"))
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from experiments.mnist_cnn import METRIC, MODE, TASK, DataConfig, ModelConfig, load_data  # noqa: F401\n"
        "from experiments.mnist_cnn import build_model as real\n\n\n"
        "def build_model(cfg, info):\n"
        "    model = real(cfg, info)\n"
        "    return model if cfg.arch == 'cnn' else None  # the MLP corner of the space is broken\n"
    )
    p = configured("data.dataset=digits", "data.subset=200", f"experiment={broken}")
    refused(preflight.check_experiment_runs, p, r"^experiment: .*broken\.py build_model returned NoneType, not a torch")
    broken.write_text(broken.read_text().replace("return model if cfg.arch == 'cnn' else None", "return info['nope']"))
    from raytune_suite.experiments import load_experiment

    load_experiment.cache_clear()
    refused(preflight.check_experiment_runs, p, r"^experiment: .*broken\.py:7 in build_model: KeyError: 'nope'")
