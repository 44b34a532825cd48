"""The campaign worker: one thread in the hub process that drives campaigns on the SuperLink.

Started by the app lifespan when ``campaign_superlink`` is set. Every tick it advances each
active campaign by one step (:func:`hub.campaigns.flows.advance`) in its own session, so a
slow step of one campaign never leaves another's session open, and on start it simply picks
up the campaigns that were running when the hub stopped. It never imports torch: model
export runs in a subprocess.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from federation.flower.environment import apply_to_current_process
from federation.schemas.campaigns import CampaignFailureCode, CampaignStatus
from hub.campaigns import flows, service
from hub.config import HubSettings
from hub.registry.artifacts import ArtifactStore

if TYPE_CHECKING:
    from federation.flower.control import ControlClient

log = logging.getLogger(__name__)

#: Consecutive failed steps after which a campaign is failed instead of retried.
MAX_STEP_ERRORS = 30


class CampaignWorker:
    """Drive queued and running campaigns until they end.

    Parameters
    ----------
    settings
        Hub settings (SuperLink address and root certificate, work directory, poll period).
    session_factory
        Makes the worker's own sessions.
    store
        The hub's artifact store (parent exports are read from it, new ones written).
    """

    def __init__(
        self,
        *,
        settings: HubSettings,
        session_factory: Callable[[], Session],
        store: ArtifactStore,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._control: ControlClient | None = None
        self._errors: dict[int, int] = {}

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._loop, name="campaign-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after its current step and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._control is not None:
            self._control.close()
            self._control = None

    def _control_client(self) -> ControlClient:
        if self._control is None:
            work_dir = self.settings.campaign_work_dir
            # Telemetry and update checks off before flwr is first imported.
            apply_to_current_process(flwr_home=work_dir.resolve() / "flwr-home")
            from federation.flower.control import ControlClient

            assert self.settings.campaign_superlink is not None
            self._control = ControlClient(
                self.settings.campaign_superlink,
                self.settings.campaign_superlink_root_cert,
                allow_insecure=self.settings.environment == "development",
            )
        return self._control

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let the thread die; the next tick retries
                log.exception("campaign worker tick failed")
            self._stop.wait(self.settings.campaign_poll_seconds)

    def tick(self) -> None:
        """Advance every active campaign by one step."""
        with self.session_factory() as session:
            ids = service.active_campaign_ids(session=session)
        for campaign_id in ids:
            if self._stop.is_set():
                return
            self._step(campaign_id)

    def _step(self, campaign_id: int) -> None:
        with self.session_factory() as session:
            try:
                flows.advance(
                    session=session, campaign_id=campaign_id, control=self._control_client(),
                    store=self.store, work_dir=self.settings.campaign_work_dir,
                )
                self._errors.pop(campaign_id, None)
            except Exception as err:
                session.rollback()
                count = self._errors.get(campaign_id, 0) + 1
                self._errors[campaign_id] = count
                log.warning("campaign %s step failed (%s/%s): %s", campaign_id, count,
                            MAX_STEP_ERRORS, err)
                if count >= MAX_STEP_ERRORS:
                    self._give_up(session, campaign_id, err)

    def _give_up(self, session: Session, campaign_id: int, err: Exception) -> None:
        campaign = service.get_campaign_or_raise(session=session, campaign_id=campaign_id)
        if CampaignStatus(campaign.status).final:
            return
        code = (
            CampaignFailureCode.SUPERLINK_UNREACHABLE
            if "connect" in str(err).lower() or "unavailable" in str(err).lower()
            else CampaignFailureCode.INTERNAL
        )
        service.finish(
            session=session, campaign=campaign, status=CampaignStatus.FAILED, failure_code=code,
            failure_detail=f"gave up after {MAX_STEP_ERRORS} failed attempts: {err}",
        )
        self._errors.pop(campaign_id, None)
