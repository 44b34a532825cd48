"""The results file of a federated run: the ServerApp's recorder and the readers' side."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from federation.schemas.federated_run import (
    Dropout,
    Failure,
    FailureCode,
    FederatedRunResult,
    ModelArtifact,
    Rejection,
    RoundRecord,
    RunOutcome,
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def read_results(path: Path) -> FederatedRunResult | None:
    """Return the results document at ``path``, or None if the run never wrote it."""
    if not path.exists():
        return None
    return FederatedRunResult.model_validate_json(path.read_text(encoding="utf-8"))


class RunRecorder:
    """Owns the :class:`FederatedRunResult` of one run and writes it after each change.

    Parameters
    ----------
    path : Path | None
        Where to write the JSON document; None keeps it in memory only (unit tests).
    result : FederatedRunResult
        The initial document (status ``running``).
    """

    def __init__(self, path: Path | None, result: FederatedRunResult) -> None:
        self.path = path
        self.result = result
        self._rounds: dict[int, RoundRecord] = {}
        self.flush()

    @classmethod
    def start(
        cls,
        path: Path | None,
        *,
        baseline: str,
        strategy: str,
        rounds_planned: int,
        min_participants: int,
        campaign_id: str | None = None,
    ) -> RunRecorder:
        """Create the recorder of a run that starts now."""
        return cls(
            path,
            FederatedRunResult(
                campaign_id=campaign_id,
                baseline=baseline,
                strategy=strategy,
                rounds_planned=rounds_planned,
                min_participants=min_participants,
                started_at=_now(),
            ),
        )

    def round(self, server_round: int) -> RoundRecord:
        """Return the record of ``server_round``, creating it on first use."""
        if server_round not in self._rounds:
            record = RoundRecord(round=server_round)
            self._rounds[server_round] = record
            self.result.rounds.append(record)
        return self._rounds[server_round]

    def reject(self, rejection: Rejection) -> None:
        """Record a refused update."""
        self.result.rejections.append(rejection)
        self.round(rejection.round).rejected.append(rejection.plant_id)

    def drop(self, dropout: Dropout) -> None:
        """Record a plant that did not answer (or answered with an error)."""
        self.result.dropouts.append(dropout)
        record = self.round(dropout.round)
        if dropout.plant_id not in record.dropped:
            record.dropped.append(dropout.plant_id)

    def complete_round(self, server_round: int) -> None:
        """Mark ``server_round`` as done and write the file."""
        self.result.rounds_completed = max(self.result.rounds_completed, server_round)
        self.flush()

    def succeed(self, model: ModelArtifact | None) -> None:
        """Finish the run successfully."""
        self.result.status = RunOutcome.SUCCEEDED
        self.result.model = model
        self.result.finished_at = _now()
        self.flush()

    def fail(self, code: FailureCode, detail: str, *, server_round: int | None = None) -> None:
        """Finish the run with a failure."""
        self.result.status = RunOutcome.FAILED
        self.result.failure = Failure(code=code, detail=detail, round=server_round)
        self.result.finished_at = _now()
        self.flush()

    def participants(self) -> list[str]:
        """Plants whose update was aggregated in at least one round, sorted."""
        return sorted({p for r in self.result.rounds for p in r.participants})

    def samples_per_plant(self) -> dict[str, int]:
        """Largest training sample count each participant reported."""
        counts: dict[str, int] = {}
        for record in self.result.rounds:
            for plant, m in record.train.per_plant.items():
                if plant in record.participants:
                    counts[plant] = max(counts.get(plant, 0), m.num_examples)
        return dict(sorted(counts.items()))

    def flush(self) -> None:
        """Atomically rewrite the results file (no-op without a path)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(self.result.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, self.path)
