"""The on-site plant node: validation, torch-free serving, monitoring, store-and-forward."""
