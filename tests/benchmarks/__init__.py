"""Tests of the benchmarks' pure helpers."""
