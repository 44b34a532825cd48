"""A small typed HTTP client of the node's own API (the demo, replays and operators use it)."""

from __future__ import annotations

from typing import Any

import httpx

from federation.errors import error_from_problem
from plant_node.monitoring.schemas import AlertRead, ChunkRead, OutcomeResult
from plant_node.serving.schemas import FeedbackRead, PredictionDetail, PredictResponse


class NodeClient:
    """Calls one plant node; errors come back as the node's ``MillwrightError`` subclasses.

    Parameters
    ----------
    base_url
        The node's URL, e.g. ``http://127.0.0.1:8200``.
    client
        An ``httpx.Client`` to use instead (tests pass a ``TestClient``).
    timeout
        Request timeout in seconds.
    key
        The node key sent as ``Authorization: Bearer <key>`` (``millwright node create-key``);
        ``line`` for predict, feedback and outcomes.
    """

    def __init__(
        self, base_url: str = "http://127.0.0.1:8200", *, client: httpx.Client | None = None,
        timeout: float = 10.0, key: str | None = None,
    ) -> None:  # fmt: skip
        self._own = client is None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if client is None:
            client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)
        else:
            client.headers.update(headers)
        self._client = client

    def close(self) -> None:
        """Close the connection pool if this client created it."""
        if self._own:
            self._client.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        raise error_from_problem(body if isinstance(body, dict) else {}, response.status_code)

    def predict(self, baseline: str, records: list[dict[str, Any]]) -> PredictResponse:
        """Score records (one prediction per record, or per engine for C-MAPSS).

        Raises
        ------
        ContractViolation
            With the node's violation list; the batch is quarantined on the node.
        """
        body = {"baseline": baseline, "records": records}
        return PredictResponse.model_validate_json(
            self._check(self._client.post("/v1/predict", json=body)).content
        )

    def get_prediction(self, prediction_id: str) -> PredictionDetail:
        """Return a logged prediction with its attributions (when computed)."""
        response = self._client.get(f"/v1/predictions/{prediction_id}")
        return PredictionDetail.model_validate_json(self._check(response).content)

    def feedback(
        self,
        prediction_id: str,
        verdict: str,
        *,
        true_label: str | None = None,
        failure_type: str | None = None,
    ) -> FeedbackRead:
        """Send the floor's verdict on a prediction."""
        body = {
            "prediction_id": prediction_id,
            "verdict": verdict,
            "true_label": true_label,
            "failure_type": failure_type,
        }
        response = self._client.post("/v1/feedback", json=body)
        return FeedbackRead.model_validate_json(self._check(response).content)

    def post_outcomes(
        self, outcomes: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> OutcomeResult:
        """Send labels: failure records ``{unit, failed_at_cycle}`` or QA verdicts.

        Raises
        ------
        InvalidInput
            Unknown units or predictions, or labels of the wrong type (nothing stored).
        Conflict
            Outcomes the node already holds (nothing stored).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._client.post("/v1/outcomes", json={"outcomes": outcomes}, headers=headers)
        return OutcomeResult.model_validate_json(self._check(response).content)

    def alerts(self, status: str | None = None) -> list[AlertRead]:
        """Return the node's monitoring alerts, newest first."""
        params = {"status": status} if status else {}
        response = self._check(self._client.get("/v1/alerts", params=params))
        return [AlertRead.model_validate(a) for a in response.json()]

    def monitoring_chunks(self, baseline: str | None = None, limit: int = 200) -> list[ChunkRead]:
        """Return the newest monitored chunks, oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if baseline:
            params["baseline"] = baseline
        response = self._check(self._client.get("/v1/monitoring/chunks", params=params))
        return [ChunkRead.model_validate(c) for c in response.json()]

    def ready(self) -> dict[str, Any]:
        """Return the readiness document (does not raise on 503)."""
        data: dict[str, Any] = self._client.get("/v1/ready").json()
        return data
