"""Check that every relative link and `#anchor` in the project's Markdown resolves (`make lint`).

The pages: README.md, ARCHITECTURE.md, bench/README.md and docs/*.md. A link to a file must name
one that exists; an anchor must be a heading's slug in the page it points into, as GitHub makes
them (`slug`), or an `<a id>` / `<a name>` there. Links to other sites are not followed, and
nothing inside code (fenced blocks, `spans`) is a link or a heading. Standard library only.

    python toolchain/check_links.py [PAGE.md ...]
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "ARCHITECTURE.md", "bench/README.md", "docs/*.md")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.I)
_HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)=["']([^"']+)["']""", re.I)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)
_KEPT = {"-", "_", " "}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading, as github-slugger makes it.

    The text lowercased, punctuation and symbols dropped but `-` and `_`, each space a `-`.
    Markup goes first: links keep their text, code spans their content, HTML tags nothing.
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = _CODE_SPAN.sub(lambda match: match.group(2), text).strip().lower()
    kept = (c for c in text if c in _KEPT or unicodedata.category(c)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def _outside_code(markdown: str) -> list[tuple[int, str]]:
    """(line number, text) of each line not in a fenced code block; fence lines are blank."""
    lines: list[tuple[int, str]] = []
    fence = ""
    for number, line in enumerate(markdown.splitlines(), 1):
        opening = _FENCE.match(line)
        if fence:
            closing = line.strip()
            if closing.startswith(fence) and not closing.strip(fence[0]):
                fence = ""
            lines.append((number, ""))
        elif opening:
            fence = opening.group(1)
            lines.append((number, ""))
        else:
            lines.append((number, line))
    return lines


def anchors(markdown: str) -> set[str]:
    """The anchors a page has.

    Its headings' slugs (the same one again taking -1, -2, ...) and its `<a id>` / `<a name>`.
    """
    found: set[str] = set()
    counts: dict[str, int] = {}

    def add(heading: str) -> None:
        base = candidate = slug(heading)
        while candidate in counts:  # as github-slugger counts them
            counts[base] += 1
            candidate = f"{base}-{counts[base]}"
        counts[candidate] = 0
        found.add(candidate)

    previous = ""
    for _, line in _outside_code(markdown):
        atx = _ATX.match(line)
        if atx:
            add(atx.group(2) or "")
            line = ""  # a heading is not a setext heading's text
        elif _SETEXT.match(line) and previous.strip() and not previous.lstrip().startswith("|"):
            add(previous)
            line = ""
        found.update(_HTML_ANCHOR.findall(_CODE_SPAN.sub("", line)))
        previous = line
    return found


def links(markdown: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code, other sites' left out."""
    found = []
    for number, line in _outside_code(markdown):
        text = _CODE_SPAN.sub("", line)
        targets = _INLINE_LINK.findall(text) + _REFERENCE.findall(text)
        targets += _HTML_LINK.findall(text)
        for target in targets:
            target = target.strip("<>")
            if target and not _EXTERNAL.match(target):
                found.append((number, target))
    return found


def problems(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with a page's links, one line each, as `path:line: ...`."""
    where = page.relative_to(root)
    found = []
    for number, target in links(page.read_text(encoding="utf-8")):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not path.exists():
            found.append(f"{where}:{number}: {target}: no such file")
        elif not path.is_relative_to(root):
            found.append(f"{where}:{number}: {target}: outside the repository")
        elif (
            anchor
            and path.suffix == ".md"
            and unquote(anchor) not in anchors(path.read_text(encoding="utf-8"))
        ):
            found.append(f"{where}:{number}: {target}: no heading with that anchor")
    return found


def pages(root: Path = ROOT) -> list[Path]:
    """The pages checked: PAGES, those that exist."""
    return sorted({path for pattern in PAGES for path in root.glob(pattern)})


def main(argv: list[str]) -> int:
    """Print each broken link; 1 if there is one."""
    checked = [Path(arg).resolve() for arg in argv] or pages()
    found = [problem for page in checked for problem in problems(page)]
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
