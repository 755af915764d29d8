"""Code and configs cite only documents that are in the repository (the repository explains itself)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("qrec", "conf", "bench")
SUFFIXES = {".py", ".yaml", ".yml", ".txt", ".toml", ".md"}
MD_REF = re.compile(r"[\w./~-]*[\w-]+\.md\b")


def broken_references(root: Path) -> list[str]:
    """Every ``*.md`` reference (and any ``shared/`` path) in root's qrec/, conf/, bench/ that does not resolve:
    a path must exist from the repository root or from the citing file's folder; a bare file name must be the
    name of some Markdown file in the repository. Benchmark outputs (``results`` folders) are not scanned."""
    names = {p.name for p in root.rglob("*.md") if ".git" not in p.parts}
    broken = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES or "results" in path.parts:
                continue
            for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{path.relative_to(root)}:{line_no}"
                if re.search(r"(?<![\w.])shared/", line):
                    broken.append(f"{where}: cites shared/ (outside the repository)")
                for ref in MD_REF.findall(line):
                    ok = (root / ref).is_file() or (path.parent / ref).is_file() if "/" in ref else ref in names
                    if not ok:
                        broken.append(f"{where}: {ref} is not in the repository")
    return broken


def test_every_markdown_reference_exists():
    assert broken_references(ROOT) == []


def test_the_check_catches_a_missing_document(tmp_path):
    """The scanner itself works: references to missing documents are reported, existing ones are not."""
    (tmp_path / "qrec").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "qubo.md").write_text("# formulas\n")
    (tmp_path / "qrec" / "probe.py").write_text('"""See DESIGN.md, shared/QUBO.md and docs/qubo.md."""\n')
    broken = broken_references(tmp_path)
    assert any("DESIGN.md" in b for b in broken) and any("shared/" in b for b in broken)
    assert not any(b.endswith("docs/qubo.md is not in the repository") for b in broken)
