"""``python -m qrec.report <dir>``: results.md (tables with intervals) and figures of a (multi)run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from qrec.report.write import FORMATS, write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m qrec.report",
        description="Tables with paired intervals (unit: seed / fold / split) and user-level bootstrap intervals "
        "against a reference model, plus figures, from a run or multirun directory.",
    )
    parser.add_argument("root", type=Path, help="a run or multirun output directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the root)")
    parser.add_argument("--reference", default="als", help="label or model class to compare with (default: als)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="png", help="figure format (default: png)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (e.g. a second --reference)")
    parser.add_argument("--resamples", type=int, default=2000, help="user-bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples (default: 0)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        raise SystemExit(f"{args.root} is not a directory.")
    fmt = None if args.no_figures else args.fmt
    path = write_report(args.root, args.out, args.reference, fmt, args.resamples, args.seed)
    print(path.read_text())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
