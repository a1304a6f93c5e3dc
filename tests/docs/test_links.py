"""Every relative link and `#anchor` in the README, ARCHITECTURE.md, bench/README.md and docs/
resolves: the file exists, and the anchor is a heading of it (as GitHub names headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "bench" / "README.md"],
) + sorted((ROOT / "docs").glob("*.md"))
# Pages another branch adds (the generated settings reference): linked before they are merged.
PENDING = {ROOT / "docs" / "settings.md"}
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def prose(page: Path) -> str:
    """The page without its fenced code blocks (a `## Role` in an example is no heading)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    names = set()
    for heading in HEADING.findall(prose(page)):
        name = slug(heading)
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.add(name if count == 0 else f"{name}-{count}")
    return names


def links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(page))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def test_the_slug_is_githubs():
    assert slug("`make e2e`: the stack deployed to an AWS emulator") == (
        "make-e2e-the-stack-deployed-to-an-aws-emulator"
    )
    assert slug("The server's key: Secrets Manager") == "the-servers-key-secrets-manager"
    assert slug("Which model answers, and with which key (`api_key_source`)") == (
        "which-model-answers-and-with-which-key-api_key_source"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_code_block_is_closed(page):
    fences = re.findall(r"^```", page.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(fences) % 2 == 0, "a code fence is never closed: the rest reads as code"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if file in PENDING and not file.exists():
            continue
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"
