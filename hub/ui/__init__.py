"""Server-rendered dashboards under ``/ui``: fleet, comparison, plant, model and money pages."""
