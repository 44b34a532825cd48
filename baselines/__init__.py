"""Baseline models: data loaders, shared feature pipelines, data contracts, training, export.

Imports no web framework; torch appears only in ``baselines.models`` and ``baselines.export``.
"""
