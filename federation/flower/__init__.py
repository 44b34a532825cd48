"""Flower deployment: certificates, SuperLink/SuperNode processes, Control API runner.

Nothing here is imported by ``import federation``; modules that import flwr
(``control``) must be imported after ``environment.apply_to_current_process``.
"""
