"""Registry domain: plants, baseline models, artifacts, versions, tags and aliases."""
