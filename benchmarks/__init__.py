"""Benchmarks run by ``make bench``: each ``bench_*.py`` module prints a table and writes JSON."""
