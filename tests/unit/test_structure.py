"""The package's shape: no import circles, and decisions made in one place."""

import ast
import os
from pathlib import Path

import pytest

from raytune_suite.track.store import pick_tracking_uri
from tests.conftest import REPO

PACKAGE = REPO / "raytune_suite"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every package module `path` imports: at the top, in a function or under TYPE_CHECKING alike (a structure
    drawing shows them all)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from pkg import x`: the submodule pkg.x where there is one, else a name of pkg itself.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in known}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a path that comes back to its start), or None."""
    state: dict[str, str] = {}  # "open" on the current path, "done" when every path from it was followed

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (circle := visit(nxt, [*path, nxt])):
                return circle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start, [start])):
            return circle
    return None


def test_the_package_has_no_import_circles():
    # There were three: preflight -> sweep -> publish -> report -> preflight; trainable -> smoke -> estimators ->
    # trainable; config <-> optim/schedules (a TYPE_CHECKING import of TrainConfig).
    graph = import_graph()
    assert len(graph) > 30 and graph["raytune_suite.run.sweep"]  # the walk sees the package and its imports
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("flag", "saved", "config", "env", "expected"),
    [
        ("http://flag:5000", "sqlite:///saved.db", "http://cfg:5000", "http://env:5000", "--mlflow-uri"),
        (None, "sqlite:///saved.db", "http://cfg:5000", "http://env:5000", "the sweep's run map"),
        (None, None, "http://cfg:5000", "http://env:5000", "mlflow.tracking_uri"),
        (None, None, None, "http://env:5000", "$MLFLOW_TRACKING_URI"),
    ],
)
def test_one_tracking_uri_rule_flag_then_run_map_then_config_then_environment(
    monkeypatch, flag, saved, config, env, expected
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    uri, field = pick_tracking_uri(flag, saved=saved, config=config)
    assert field == expected
    assert uri == {"--mlflow-uri": flag, "the sweep's run map": saved, "mlflow.tracking_uri": config}.get(field, env)


def test_without_any_the_store_is_mlflow_db_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert pick_tracking_uri() == (f"sqlite:///{tmp_path / 'mlflow.db'}", "--mlflow-uri")


def test_every_trial_folder_name_comes_from_the_sweep_folder_module():
    # `trial_{id}` was written in four places; a fifth copy would drift from Tune's trial_dirname_creator.
    copies = [p.name for p in PACKAGE.rglob("*.py") if 'f"trial_{' in p.read_text() and p.name != "sweep_folder.py"]
    assert copies == []


@pytest.mark.parametrize("before", [None, "http://set-before:5000"])
def test_the_fluent_tracking_uri_is_put_back_as_it_was(monkeypatch, before):
    import mlflow

    from raytune_suite.track.store import fluent_tracking_uri

    if before is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(before)
    try:
        with fluent_tracking_uri("sqlite:///inside.db"):
            assert mlflow.get_tracking_uri() == "sqlite:///inside.db"
        assert os.environ.get("MLFLOW_TRACKING_URI") == before  # a trial started now logs where it did before
        if before:
            assert mlflow.get_tracking_uri() == before
    finally:
        mlflow.set_tracking_uri(None)


def test_no_module_but_ray_compat_calls_rays_or_mlflows_private_code():
    # Private imports bind the suite to one release; ray_compat.py checks the version and tests each use.
    private = ("ray._private", "ray.air._internal", "mlflow.tracking._", "_use_tracking_uri", "_internal_kv")
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "ray_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                used = [n for n in names if n.startswith(private)]
                if used and not _warm_import_only(path, node):
                    offenders.setdefault(path.name, []).extend(used)
    assert offenders == {}


def _warm_import_only(path: Path, node: ast.AST) -> bool:
    """`import x  # noqa: F401` under contextlib.suppress(ImportError): loaded ahead of Tune, nothing of it used."""
    line = path.read_text().splitlines()[node.lineno - 1]
    return isinstance(node, ast.Import) and "noqa: F401" in line


def test_the_layers_are_folders_and_the_experiment_authors_paths_did_not_move():
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert layers == {"config", "check", "search", "train", "run", "track", "review"}
    assert (PACKAGE / "experiments.py").is_file() and (PACKAGE / "data.py").is_file()


def test_every_module_that_moved_is_the_same_module_under_its_old_path():
    # A sweep folder written before the move pickles classes by their old paths (raytune_suite.tuner, ...).
    import importlib
    import subprocess
    import sys

    from raytune_suite import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(f"raytune_suite.{old}") is importlib.import_module(f"raytune_suite.{new}")
        assert importlib.import_module(f"raytune_suite.{new}").__spec__.name == f"raytune_suite.{new}"
    pickled = (
        "import pickle, raytune_suite.search.fidelity as f; "
        "print(pickle.loads(pickle.dumps(f.RungRanked)) is f.RungRanked)"
    )
    old_first = (
        "from raytune_suite.tracking import MlflowTracker as T; import raytune_suite.track.tracking as t; "
        "print(T is t.MlflowTracker)"
    )
    for snippet in (pickled, old_first):  # fresh processes: the old path imported first
        out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == "True", out.stderr[-2000:]
    assert {p.stem for p in PACKAGE.glob("*.py")} & set(MOVED) == set()  # no stale copy at the old place
