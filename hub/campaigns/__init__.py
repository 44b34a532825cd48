"""Federated campaigns: requests to fine-tune a baseline on several plants, run on Flower."""
