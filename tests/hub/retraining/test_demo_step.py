"""The demo's retraining step follows the node's request to its settled chain."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.console import Console

from federation.demo.context import DemoContext, DemoError
from federation.schemas.retraining import CandidateOutcome
from tests.hub.fixtures import Tokens
from tests.hub.retraining.test_candidates import Loop, _loop

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def demo_loop(app: FastAPI, client: TestClient, tokens: Tokens) -> Loop:
    return _loop(app, client, tokens, approvals=0)


def test_follow_retraining_prints_the_settled_chain(demo_loop: Loop, tmp_path: Path) -> None:
    loop = demo_loop
    out = io.StringIO()
    ctx = DemoContext(workdir=tmp_path, console=Console(file=out, width=200), hub=loop.admin)
    with pytest.raises(DemoError, match="no retraining request from fd001"):
        from federation.demo.retraining_steps import follow_retraining

        follow_retraining(ctx, request_timeout_s=0.0, poll_s=0.0)
    fired = loop.fire()
    loop.finish(fired.campaign_id, rmse=13.0)
    loop.settle()

    chain = follow_retraining(ctx, request_timeout_s=1.0, candidate_timeout_s=1.0, poll_s=0.0)

    assert chain.request.candidate_outcome is CandidateOutcome.PROMOTED
    text = out.getvalue()
    assert "local_fine_tune" in text and "promotion" in text and "approved" in text
