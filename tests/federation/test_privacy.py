"""Privacy options: what runs (client-side DP) and what flwr 1.41 cannot run (SecAgg+).

The SecAgg+ tests pin the API facts the README gives for refusing it; if a Flower upgrade
makes SecAgg+ usable with Message-API strategies, they fail and the refusal can be revisited.
"""

from __future__ import annotations

import importlib
import typing

import pytest
from flwr.app import Context, RecordDict
from pydantic import ValidationError

from baselines.recipes import PrivacyKnobs
from federation.simulation import simulation_grid


def test_secure_aggregation_knob_is_refused() -> None:
    with pytest.raises(ValidationError, match="secure_aggregation is not supported"):
        PrivacyKnobs(secure_aggregation=True)
    assert PrivacyKnobs().secure_aggregation is False


def test_secaggplus_workflow_needs_the_legacy_context() -> None:
    from flwr.server.workflow import SecAggPlusWorkflow

    grid = simulation_grid({"plant-a": {}, "plant-b": {}, "plant-c": {}}, {})
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})

    with pytest.raises(TypeError, match="Expect a LegacyContext"):
        SecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2)(grid, context)  # type: ignore[arg-type]


def test_secaggplus_drives_only_legacy_strategy_methods() -> None:
    import inspect

    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.workflow.secure_aggregation import secaggplus_workflow
    from flwr.serverapp.strategy import Strategy

    source = inspect.getsource(secaggplus_workflow)
    assert "context.strategy.configure_fit(" in source
    assert "context.strategy.aggregate_fit(" in source
    # Millwright's strategies are Message-API ones: they have neither method.
    assert not hasattr(Strategy, "configure_fit") and not hasattr(Strategy, "aggregate_fit")
    # The workflow's context carries a legacy strategy, another class hierarchy.
    from flwr.server.strategy import Strategy as LegacyStrategy

    assert typing.get_type_hints(LegacyContext)["strategy"] is LegacyStrategy
    assert not issubclass(LegacyStrategy, Strategy)


def test_no_message_api_secaggplus_mod() -> None:
    clientapp_mods = importlib.import_module("flwr.clientapp.mod")
    legacy_mods = importlib.import_module("flwr.client.mod")

    assert not hasattr(clientapp_mods, "secaggplus_mod")
    assert hasattr(legacy_mods, "secaggplus_mod")
