"""Suite-wide pytest configuration: fixture plugins shared across test packages."""

# The hub fixtures are also used by tests/federation (the hub client runs against the real app).
pytest_plugins = ["tests.hub.fixtures"]
