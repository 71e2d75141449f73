"""Secure by default, checked over every file in cluster/: nothing listens on all interfaces without token auth.

Two rules, from what Ray 2.60 does (docs/STACK_NOTES): (1) a dashboard, GCS, Ray Client or MLflow server bound to all
interfaces (0.0.0.0, ::) is allowed only in a file that turns token auth on (RAY_AUTH_MODE=token) and with a comment
on that line or the one above saying why; (2) Ray binds its GCS, raylets and client server on all interfaces
whatever `--node-ip-address` says, so every file that starts Ray nodes must turn token auth on as well.
A shell script counts what it `source`s; in Markdown only fenced code blocks count (prose may name 0.0.0.0).
"""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

CLUSTER = REPO / "cluster"
FILES = sorted(p for p in CLUSTER.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
ALL_INTERFACES = re.compile(r"0\.0\.0\.0|\[::\]|(?:host|bind)\W{1,3}::(?:\W|$)")
TOKEN_ON = re.compile(r"RAY_AUTH_MODE\W+(?:value:\s*)?token\b")
# `ray start` in scripts and launcher configs, KubeRay manifests (not the schema that describes them).
STARTS_RAY = re.compile(r"\bray start\b|\bstart_node\b|^kind:\s*Ray(?:Cluster|Job)\b", re.MULTILINE)
SOURCED = re.compile(r"""^\s*(?:source|\.)\s+"?\$\(dirname "\$0"\)/([\w.-]+)"?""", re.MULTILINE)


def code_lines(path: Path, text: str) -> list[tuple[int, str]]:
    """(line number, line) of what would run: all of a config or script, only the fenced blocks of Markdown."""
    lines = list(enumerate(text.splitlines(), 1))
    if path.suffix != ".md":
        return lines
    kept, fenced = [], False
    for number, line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            kept.append((number, line))
    return kept


def with_sourced(path: Path, text: str) -> str:
    """The script's text plus the files it sources from its own folder (cluster/local/common.sh sets the auth mode)."""
    return text + "".join((path.parent / name).read_text() for name in SOURCED.findall(text))


def problems(path: Path, text: str) -> list[str]:
    """Why this file is not secure by default; [] if it is."""
    lines = code_lines(path, text)
    code = "\n".join(line for _, line in lines)
    token_on = bool(TOKEN_ON.search(with_sourced(path, code)))
    found = []
    for i, (number, line) in enumerate(lines):
        if not ALL_INTERFACES.search(line.split("#")[0] if path.suffix != ".md" else line):
            continue
        if not token_on:
            found.append(f"{path.name}:{number} binds all interfaces but the file never sets RAY_AUTH_MODE=token")
        commented = "#" in line or (i > 0 and lines[i - 1][1].lstrip().startswith("#"))
        if not commented:
            found.append(f"{path.name}:{number} binds all interfaces without a comment saying why")
    if STARTS_RAY.search(code) and not token_on:
        found.append(f"{path.name} starts Ray (its GCS listens on all interfaces) without RAY_AUTH_MODE=token")
    return found


def test_the_scan_sees_every_kind_of_file_in_cluster():
    assert {p.suffix or p.name for p in FILES} >= {".yaml", ".sh", ".md", "Dockerfile"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_shipped_file_listens_on_all_interfaces_without_token_auth_and_a_reason(path: Path):
    assert problems(path, path.read_text(errors="replace")) == []


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_the_kuberay_dashboard_binds_all_interfaces_inside_the_pod_network_on_purpose(name):
    # KubeRay's job submitter and port-forward reach the head through its ClusterIP Service, not via loopback.
    text = (CLUSTER / "kuberay" / name).read_text()
    line = next(line for line in text.splitlines() if "dashboard-host" in line)
    assert '"0.0.0.0"' in line and "token" in line.split("#", 1)[1]


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("a.sh", "ray start --head --dashboard-host 0.0.0.0\n", ["never sets", "without a comment", "starts Ray"]),
        ("a.sh", "export RAY_AUTH_MODE=token\nray start --head --dashboard-host=0.0.0.0\n", ["without a comment"]),
        (
            "a.sh",
            "export RAY_AUTH_MODE=token\n# pods reach it via the Service\nray start --head --dashboard-host=0.0.0.0\n",
            [],
        ),
        ("a.yaml", "cmd: mlflow server --host 0.0.0.0  # why\n", ["never sets"]),
        ("a.yaml", "cmd: mlflow server --host '::'  # why\n", ["never sets"]),
        ("a.sh", "ray start --head --dashboard-host 127.0.0.1\n", ["starts Ray"]),
        (
            "a.md",
            "Never bind 0.0.0.0.\n```bash\nmlflow server --host 0.0.0.0\n```\n",
            ["never sets", "without a comment"],
        ),
        ("a.md", "Never bind 0.0.0.0 (prose, not code).\n", []),
    ],
)
def test_the_scan_catches_an_open_bind_a_missing_reason_and_ray_without_a_token(tmp_path, name, text, expected):
    path = tmp_path / name
    found = problems(path, text)
    assert len(found) == len(expected) and all(want in got for want, got in zip(expected, found, strict=True)), found
