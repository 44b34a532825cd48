"""The central hub: model registry, recipes, campaigns, governance and cross-plant metrics."""
