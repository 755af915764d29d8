"""Turn a (multi)run directory into results.md and plots: ``python -m qrec.report <dir> [--out DIR]``.

- :mod:`qrec.report.runs`: find runs, key them by test set (split, fold, seed) and by dataset;
- :mod:`qrec.report.stats`: the statistics (paired t-interval over test sets, user-level bootstrap);
- :mod:`qrec.report.compare`: every model against the reference (ALS by default);
- :mod:`qrec.report.tables`, :mod:`qrec.report.plots`: markdown tables and figures;
- :mod:`qrec.report.__main__`: the command line and :func:`write_report`.

``docs/significance.md`` explains the units and how to read the intervals.
"""
