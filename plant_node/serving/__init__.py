"""Torch-free serving: contracts, shared features, compiled OpenVINO models, explanations."""
