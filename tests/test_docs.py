"""Every "spec §N", "decisions DN" and "quirk QN" the code cites resolves to a heading in docs/.

Comments cite the algorithm notes (``docs/algorithm.md``, headings ``§5``,
``§5.1``, ...) and the decisions and quirks (``docs/decisions.md``, headings
``D1``..``D16``, ``Q1``..``Q8``). A citation whose heading does not exist sends a
maintainer nowhere, so it fails here. Relative links inside ``docs/`` are checked
too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# "§5", "§ 10.2", "§5–§7" (two citations); "D14"; "Q3".
CITATION = re.compile(r"§ ?(\d+(?:\.\d+)*)|\b(D\d{1,2})\b|\b(Q\d)\b")
# A heading defines the label that opens it: "## §5 Encoder", "### D14 Metrics".
HEADING = re.compile(r"^(#{1,6})\s+(§\d+(?:\.\d+)*|D\d{1,2}|Q\d)(?=\s|$)")
LINK = re.compile(r"\]\(([^)\s]+)\)")

# The code the issue requires to resolve, and the rest of the repository's prose and
# scripts, which cite the same headings.
CODE = [ROOT / "neocli", ROOT / "cython_core", ROOT / "setup.py"]
ELSEWHERE = [ROOT / "README.md", ROOT / "tests", ROOT / "benchmarks", ROOT / "examples", ROOT / "tools"]
SUFFIXES = {".py", ".pyx", ".pxd", ".md"}


def citations(text: str) -> list[tuple[int, str]]:
    """``(line number, label)`` of every citation in ``text``; labels as headings spell them."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in CITATION.finditer(line):
            out.append((n, f"§{m.group(1)}" if m.group(1) else m.group(2) or m.group(3)))
    return out


def _lines_outside_fences(text: str):
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def headings(text: str) -> list[str]:
    """The labels the headings of one markdown text define (code fences ignored)."""
    return [m.group(2) for line in _lines_outside_fences(text) if (m := HEADING.match(line))]


def unresolved(text: str, labels: set[str]) -> list[tuple[int, str]]:
    """The citations in ``text`` that no heading defines."""
    return [(n, lab) for n, lab in citations(text) if lab not in labels]


def _doc_labels() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for md in sorted(DOCS.glob("*.md")):
        for lab in headings(md.read_text(encoding="utf-8")):
            found.setdefault(lab, []).append(md.name)
    return found


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in sorted(p.rglob("*")) if f.suffix in SUFFIXES and f.is_file()
                    and "__pycache__" not in f.parts and f.resolve() != Path(__file__).resolve()]
    return out


def _report(paths: list[Path]) -> list[str]:
    labels = set(_doc_labels())
    bad = []
    for f in _files(paths):
        for n, lab in unresolved(f.read_text(encoding="utf-8", errors="replace"), labels):
            bad.append(f"{f.relative_to(ROOT)}:{n}: {lab}")
    return bad


# ----------------------------------------------------------------- the checker itself

def test_checker_finds_citations_and_rejects_an_unresolvable_one():
    docs = "# Title\n## §5 Encoder\n### §5.1 Data\n```\n## §9 in a code fence\n```\n### D14 Metrics\n## Q1 Swapped\n"
    labels = set(headings(docs))
    assert labels == {"§5", "§5.1", "D14", "Q1"}
    ok = "spec §5.1; §5–§5.1 (decisions D14, quirk Q1)"
    assert [lab for _, lab in citations(ok)] == ["§5.1", "§5", "§5.1", "D14", "Q1"]
    assert unresolved(ok, labels) == []
    planted = "x = 1\n# spec §9 and §5.2, decisions D15, quirk Q2\n"
    assert unresolved(planted, labels) == [(2, "§9"), (2, "§5.2"), (2, "D15"), (2, "Q2")]
    # Not citations: words and identifiers that merely contain the letters.
    assert citations("ID16 D100 Q10 2D dQ1 AND") == []


def test_checker_fails_on_a_planted_citation_in_a_real_file(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""See spec §77.7 and decisions D99."""\n', encoding="utf-8")
    labels = set(_doc_labels())
    assert unresolved(planted.read_text(), labels) == [(1, "§77.7"), (1, "D99")]


# ----------------------------------------------------------------- the repository

def test_docs_define_every_label_once():
    found = _doc_labels()
    assert found, "docs/*.md define no labelled headings"
    twice = {lab: files for lab, files in found.items() if len(files) > 1}
    assert not twice, f"labels defined more than once: {twice}"
    # The full sets the code base relies on.
    assert {f"D{i}" for i in range(1, 17)} <= set(found)
    assert {f"Q{i}" for i in range(1, 9)} <= set(found)


def test_every_citation_in_the_code_resolves():
    files = _files(CODE)
    assert any(f.suffix == ".pyx" for f in files) and any(f.name == "hierarchy.py" for f in files)
    bad = _report(CODE)
    assert not bad, "citations with no heading in docs/*.md:\n" + "\n".join(bad)


def test_every_citation_elsewhere_resolves():
    bad = _report(ELSEWHERE)
    assert not bad, "citations with no heading in docs/*.md:\n" + "\n".join(bad)


def _slug(heading: str) -> str:
    # GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("md", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_in_docs_resolve(md):
    text = (DOCS / md).read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path, _, anchor = target.partition("#")
        dest = (DOCS / path).resolve() if path else DOCS / md
        assert dest.exists(), f"{md}: link to missing {target}"
        if anchor and dest.suffix == ".md":
            anchors = {_slug(line.lstrip("#")) for line in _lines_outside_fences(dest.read_text(encoding="utf-8"))
                       if line.startswith("#")}
            assert anchor in anchors, f"{md}: no heading for #{anchor} in {dest.name}"


def test_readme_points_to_the_design_notes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/DESIGN.md" in readme and (DOCS / "DESIGN.md").exists()
