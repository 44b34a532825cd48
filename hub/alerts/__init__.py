"""Monitoring alerts as the hub knows them: opened and closed from plants' metrics reports."""
