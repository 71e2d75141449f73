"""The README is a short front door and every relative link or image in it and in docs/*.md opens a file of the repo."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 200
FIRST_SCREEN_LINES = 20

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target), with an optional "title"; reference definitions: [label]: target
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s<>()]+(?:\([^\s()]*\))?)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # http(s):, mailto:, protocol-relative


def link_targets(markdown: str) -> list[str]:
    """Every link and image target outside code, as written."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return INLINE.findall(prose) + REFERENCE.findall(prose)


def missing_files(page: Path) -> list[str]:
    """The relative targets of `page` that are no file or folder of the repo (anchors stripped, URLs skipped)."""
    missing = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue  # an anchor on the same page
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            missing.append(target)
    return missing


def test_the_link_finder_sees_links_and_images_and_skips_code():
    text = (
        "See [the guide](docs/guide.md#setup), ![plot](img/a.png) and [site](https://example.org).\n"
        "`[not](a-link.md)` is code.\n```\n[nor](this.md)\n```\n[ref]: docs/ref.md\n"
    )
    assert link_targets(text) == ["docs/guide.md#setup", "img/a.png", "https://example.org", "docs/ref.md"]


def test_a_link_to_a_missing_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.unit.test_docs_links.REPO", tmp_path)
    (tmp_path / "here.md").write_text("[ok](here.md#top) [gone](gone.md) [out](../outside.md) [web](http://x.y/z.md)")
    assert missing_files(tmp_path / "here.md") == ["gone.md", "../outside.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_image_points_to_a_file_in_the_repo(page):
    assert missing_files(page) == [], f"{page.relative_to(REPO)} links to files that do not exist"


def test_the_readme_is_a_front_door_of_at_most_200_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_first_screen_shows_make_demo_and_make_test():
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    assert "make demo" in first_screen
    assert "make test" in first_screen
