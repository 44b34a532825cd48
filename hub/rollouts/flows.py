"""Rollout use cases and the engine step: start, advance, pause/resume/abort, rollback.

:func:`advance` is what the engine (:mod:`hub.rollouts.worker`) calls every tick for each
running rollout. It moves each plant of the current wave at most one stage
(pending -> shadow -> canary -> promoting -> champion) and commits once, so a hub that stops
between ticks resumes exactly where the database says it stood: a step is either committed
with its log entry and audit entries, or not at all. Shadow and canary are set through the
registry's aliases; champion only through the governance flow (a promotion request under
the rollout's gate, or a flagged rollback). Every transition is logged on the rollout
(``rollout_steps``) and appended to the audit trail.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput, NotFound
from federation.schemas.auth import Principal, Role
from federation.schemas.governance import LifecycleState, PromotionCreate, PromotionStatus
from federation.schemas.registry import AliasName
from federation.schemas.rollouts import (
    PlantStage,
    RollbackCreate,
    RolloutCreate,
    RolloutStatus,
    WebhookEvent,
)
from hub.audit import service as audit_service
from hub.auth import service as auth_service
from hub.db import begin_write, commit_or_conflict, utcnow
from hub.governance import flows as governance_flows
from hub.governance import service as governance_service
from hub.registry import service as registry_service
from hub.registry.artifacts import ArtifactStore
from hub.registry.models import ModelVersion
from hub.rollouts import evidence as evidence_mod
from hub.rollouts import service
from hub.rollouts.models import Rollback, Rollout, RolloutPlant
from hub.webhooks import service as webhooks_service
from policies import FailureHandling, PromotionGatePolicy, RolloutPolicy, Wave, evaluate

#: Most plants one rollout may hold.
MAX_PLANTS = 1000
_MOVING = (PlantStage.SHADOW, PlantStage.CANARY, PlantStage.PROMOTING)


def _subject(rollout: Rollout) -> str:
    return f"rollout:{rollout.id}"


def _plan(session: Session, ref: str) -> tuple[str, RolloutPolicy]:
    row = governance_service.get_policy_by_ref_or_raise(session=session, ref=ref)
    document = governance_service.document_of(row)
    if not isinstance(document, RolloutPolicy):
        raise InvalidInput(
            f"policy {row.ref} is a {row.kind} policy; a rollout needs a rollout plan."
        )
    return row.ref, document


def _gate(session: Session, ref: str) -> str:
    row = governance_service.get_policy_by_ref_or_raise(session=session, ref=ref)
    if not isinstance(governance_service.document_of(row), PromotionGatePolicy):
        raise InvalidInput(
            f"policy {row.ref} is a {row.kind} policy; the champion step needs a promotion gate."
        )
    return row.ref


def _fleet(session: Session, requested: list[str] | None) -> list[str]:
    if requested is not None:
        for plant_id in requested:
            registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
        return sorted(set(requested))
    out: list[str] = []
    token: str | None = None
    while True:
        rows, token = registry_service.list_plants(
            session=session, site=None, page_size=500, page_token=token
        )
        out.extend(p.id for p in rows)
        if not token or len(out) > MAX_PLANTS:
            return out


def _principal(rollout: Rollout) -> Principal:
    """Who the engine acts for: the person who started the rollout."""
    return Principal(
        token_id=0,
        user_id=rollout.created_by_user_id or 0,
        username=rollout.created_by_username,
        printed_name=rollout.created_by_printed_name,
        role=Role(rollout.created_by_role),
        name=f"rollout-{rollout.id}",
    )


def _engine_actor(rollout: Rollout) -> str:
    return f"engine:rollout-{rollout.id}"


def _check_gate_first(
    session: Session, store: ArtifactStore, version: ModelVersion, gate_ref: str, plants: list[str]
) -> None:
    """Refuse (409, with the gate's reasons) a version the gate already fails at a first plant."""
    for plant_id in plants:
        decision = governance_flows.check_gate(
            session=session, store=store, version=version, plant_id=plant_id, policy=gate_ref
        )
        if decision.get("passed"):
            continue
        failed = [
            {"path": f"gate.{r.get('rule')}", "message": str(r.get("message", ""))}
            for r in decision.get("results", [])
            if isinstance(r, dict)
            and r.get("required", True)
            and r.get("verdict") != "pass"
            and r.get("verdict") != "not_applicable"
        ] + [{"path": "gate", "message": m} for m in decision.get("refusals", [])]
        raise Conflict(
            f"version {version.id} fails gate {gate_ref} at {plant_id}: "
            f"{decision.get('summary', 'refused')}",
            errors=failed[:50],
        )


def start_rollout(
    *,
    session: Session,
    principal: Principal,
    rollout_in: RolloutCreate,
    store: ArtifactStore | None = None,
) -> Rollout:
    """Validate a rollout and store it with its plants assigned to waves (commits).

    Raises
    ------
    NotFound
        Unknown version, plan, gate or plant.
    InvalidInput
        Plan or gate of the wrong kind, a version without artifact, no gate although a wave
        promotes, a wave with no plant of the fleet, or no plant at all.
    Conflict
        When an active rollout of the same model holds one of the plants, or the version
        already fails the rollout's gate at a plant of the first wave (with the reasons).
    """
    actor = auth_service.actor_name(principal)
    begin_write(session)
    version = registry_service.get_version_or_raise(
        session=session, version_id=rollout_in.version_id
    )
    if version.artifact_digest is None:
        raise InvalidInput(f"version {version.id} has no artifact; nothing to roll out.")
    plan_ref, plan = _plan(session, rollout_in.plan)
    gate_ref = None if rollout_in.gate is None else _gate(session, rollout_in.gate)
    if gate_ref is None and any(w.promote for w in plan.waves):
        raise InvalidInput(
            f"plan {plan_ref} promotes to champion; name the promotion gate ('gate': id@version)."
        )
    fleet = _fleet(session, rollout_in.plants)
    if version.plant_id is not None:
        fleet = [p for p in fleet if p == version.plant_id]
    waves = plan.expand_waves(fleet)
    named = {name.split(".")[0] for name, _ in waves}
    for wave in plan.waves:
        if wave.name not in named:
            raise InvalidInput(
                f"wave '{wave.name}' of plan {plan_ref} has no plant of the fleet; fix the plan "
                "or the plants.",
                errors=[{"path": f"waves.{wave.name}", "message": "empty wave"}],
            )
    plants = [p for _, members in waves for p in members]
    if not plants:
        raise InvalidInput("the rollout has no plant.")
    if len(plants) > MAX_PLANTS:
        raise InvalidInput(f"a rollout holds at most {MAX_PLANTS} plants.")
    model = version.model
    service.check_no_overlap(session=session, model=model.name, plants=plants)
    if store is not None and gate_ref is not None:
        _check_gate_first(session, store, version, gate_ref, waves[0][1][:5])
    now = utcnow()
    rollout = Rollout(
        model=model.name,
        version_id=version.id,
        plan_ref=plan_ref,
        gate_ref=gate_ref,
        status=RolloutStatus.RUNNING.value,
        current_wave=0,
        waves=[name for name, _ in waves],
        failure_handling=plan.failure_handling.value,
        reason=rollout_in.reason,
        created_by=actor,
        created_by_user_id=principal.user_id or None,
        created_by_role=principal.role.value,
        created_by_username=principal.username,
        created_by_printed_name=principal.printed_name,
        created_at=now,
        updated_at=now,
    )
    session.add(rollout)
    session.flush()
    for index, (_, members) in enumerate(waves):
        for plant_id in members:
            champion = registry_service.find_alias(
                session=session, plant_id=plant_id, model_id=model.id, alias=AliasName.CHAMPION
            )
            session.add(
                RolloutPlant(
                    rollout_id=rollout.id,
                    plant_id=plant_id,
                    wave=index,
                    stage=PlantStage.PENDING.value,
                    previous_version_id=None if champion is None else champion.version_id,
                )
            )
    session.flush()
    summary = {
        "model": model.name,
        "version_id": version.id,
        "version": version.version,
        "plan": plan_ref,
        "gate": gate_ref,
        "waves": [[n, m] for n, m in waves],
    }
    service.record_step(
        session=session,
        rollout=rollout,
        action="rollout.start",
        reason=rollout_in.reason,
        decision=summary,
        now=now,
    )
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.ROLLOUT_STARTED,
        data={"rollout_id": rollout.id, **summary},
    )
    audit_service.append(
        session=session,
        actor=actor,
        action="rollout.start",
        subject=_subject(rollout),
        after=summary,
        reason=rollout_in.reason or None,
    )
    commit_or_conflict(session, detail="a concurrent rollout took one of these plants; retry")
    return rollout


# ---------------------------------------------------------------- engine


def _wave_of(plan: RolloutPolicy, name: str) -> Wave:
    base = name.split(".")[0]
    return next(w for w in plan.waves if w.name == base)


def _move(
    session: Session,
    rollout: Rollout,
    plant: RolloutPlant,
    to: PlantStage,
    now: dt.datetime,
    reason: str,
    *,
    predictions: int | None = None,
    decision: dict[str, Any] | None = None,
) -> None:
    before = plant.stage
    plant.stage = to.value
    plant.stage_started_at = now
    if predictions is not None:
        plant.predictions_at_stage = predictions
    plant.detail = reason[:2000]
    session.flush()
    service.record_step(
        session=session,
        rollout=rollout,
        action=f"plant.{to.value}",
        plant_id=plant.plant_id,
        from_stage=before,
        to_stage=to.value,
        reason=reason,
        decision=decision,
        now=now,
    )
    audit_service.append(
        session=session,
        actor=_engine_actor(rollout),
        action=f"rollout.plant_{to.value}",
        subject=f"{_subject(rollout)}/{plant.plant_id}",
        before={"stage": before},
        after={"stage": to.value, "version_id": rollout.version_id},
        reason=reason,
    )


def _set_alias(
    session: Session, rollout: Rollout, plant: RolloutPlant, alias: AliasName, state: LifecycleState
) -> None:
    registry_service.point_alias(
        session=session,
        plant_id=plant.plant_id,
        model=rollout.model,
        alias=alias,
        version_id=rollout.version_id,
        actor=_engine_actor(rollout),
    )
    governance_service.set_lifecycle(
        session=session,
        plant_id=plant.plant_id,
        version_id=rollout.version_id,
        state=state,
        promotion_id=None,
        actor=_engine_actor(rollout),
    )


def advance(
    *, session: Session, store: ArtifactStore, rollout_id: int, now: dt.datetime | None = None
) -> bool:
    """Advance one running rollout by one step per plant of its current wave (commits).

    Returns
    -------
    bool
        Whether anything changed.
    """
    now = now or utcnow()
    begin_write(session)
    rollout = service.get_rollout_or_raise(session=session, rollout_id=rollout_id, lock=True)
    if rollout.status != RolloutStatus.RUNNING.value:
        session.rollback()
        return False
    _, plan = _plan(session, rollout.plan_ref)
    version = registry_service.get_version_or_raise(session=session, version_id=rollout.version_id)
    wave_name = rollout.waves[rollout.current_wave]
    wave = _wave_of(plan, wave_name)
    plants = [
        p
        for p in service.plants_of(session=session, rollout_id=rollout.id)
        if p.wave == rollout.current_wave
    ]
    changed = False
    ready: list[tuple[RolloutPlant, int]] = []
    for plant in plants:
        stage = PlantStage(plant.stage)
        if stage.settled:
            continue
        gathered = None
        if stage in _MOVING:
            gathered = _evidence(session, rollout, plant, version, now)
            breach = _breach_reason(plan, gathered)
            if breach is not None:
                reason, decision = breach
                _fail(session, store, rollout, plan, plant, reason, decision, now)
                commit_or_conflict(session, detail="the rollout changed concurrently")
                return True
        if stage is PlantStage.PROMOTING:
            changed |= _check_promotion(session, store, rollout, plan, plant, now)
            if rollout.status != RolloutStatus.RUNNING.value:
                commit_or_conflict(session, detail="the rollout changed concurrently")
                return True
            continue
        window = plan.frozen_window(plant.plant_id, now)
        if window is not None:
            held = f"held by shift window '{window.name}'"
            if plant.detail != held:
                plant.detail = held
                session.flush()
                changed = True
            continue
        elapsed = (now - plant.stage_started_at).total_seconds() if plant.stage_started_at else 0
        predictions = gathered.predictions if gathered is not None else 0
        if stage is PlantStage.PENDING:
            _set_alias(session, rollout, plant, AliasName.SHADOW, LifecycleState.SHADOW)
            _move(
                session,
                rollout,
                plant,
                PlantStage.SHADOW,
                now,
                f"shadow of {version.version} started (wave {wave_name})",
                predictions=0,
            )
            changed = True
        elif stage is PlantStage.SHADOW:
            if elapsed >= wave.shadow.duration_s and predictions >= wave.shadow.min_predictions:
                _set_alias(session, rollout, plant, AliasName.CHALLENGER, LifecycleState.CANARY)
                registry_service.drop_alias(
                    session=session,
                    plant_id=plant.plant_id,
                    model_id=version.model_id,
                    alias=AliasName.SHADOW,
                )
                _move(
                    session,
                    rollout,
                    plant,
                    PlantStage.CANARY,
                    now,
                    f"canary at share {wave.canary.share} after {int(elapsed)} s of shadow "
                    f"and {predictions} predictions",
                    predictions=predictions,
                    decision={"canary_share": wave.canary.share},
                )
                changed = True
        elif stage is PlantStage.CANARY:
            canary = predictions - plant.predictions_at_stage
            if elapsed >= wave.canary.soak_s and canary >= wave.canary.min_predictions:
                if wave.promote:
                    ready.append((plant, predictions))
                else:
                    _move(
                        session,
                        rollout,
                        plant,
                        PlantStage.DONE,
                        now,
                        f"canary soaked {int(elapsed)} s, {canary} predictions; wave does "
                        "not promote",
                    )
                    changed = True
    if ready:
        # Promotion requests commit on their own (the governance flow): finish this step first.
        commit_or_conflict(session, detail="the rollout changed concurrently")
        for plant, predictions in ready:
            _request_champion(session, store, rollout.id, plant.plant_id, predictions, now)
        begin_write(session)
        rollout = service.get_rollout_or_raise(session=session, rollout_id=rollout_id, lock=True)
        changed = True
    if rollout.status == RolloutStatus.RUNNING.value:
        changed |= _maybe_next_wave(session, rollout, now)
    commit_or_conflict(session, detail="the rollout changed concurrently")
    return changed


def _evidence(
    session: Session,
    rollout: Rollout,
    plant: RolloutPlant,
    version: ModelVersion,
    now: dt.datetime,
) -> evidence_mod.PlantEvidence:
    champion_label = None
    if plant.previous_version_id is not None:
        previous = registry_service.get_version(
            session=session, version_id=plant.previous_version_id
        )
        champion_label = None if previous is None else previous.version
    return evidence_mod.gather(
        session=session,
        plant_id=plant.plant_id,
        model=rollout.model,
        version_label=version.version,
        champion_label=champion_label,
        since=rollout.created_at,
        now=now,
    )


def _breach_reason(
    plan: RolloutPolicy, gathered: evidence_mod.PlantEvidence
) -> tuple[str, dict[str, Any]] | None:
    if gathered.refusal is not None:
        return gathered.refusal, {"refusal": gathered.refusal}
    if not plan.abort:
        return None
    decision = evaluate(plan, gathered.evidence)
    if decision.passed:
        return None
    record = decision.model_dump(mode="json")
    record["sources"] = gathered.sources
    return decision.summary, record


def _request_champion(
    session: Session,
    store: ArtifactStore,
    rollout_id: int,
    plant_id: str,
    predictions: int,
    now: dt.datetime,
) -> None:
    """Ask the governance flow for champion at one plant (idempotent across restarts)."""
    begin_write(session)
    rollout = service.get_rollout_or_raise(session=session, rollout_id=rollout_id)
    plant = next(
        p
        for p in service.plants_of(session=session, rollout_id=rollout_id)
        if p.plant_id == plant_id
    )
    if plant.stage != PlantStage.CANARY.value or rollout.status != RolloutStatus.RUNNING.value:
        return
    promotion_id = _existing_promotion(session, rollout, plant)
    if promotion_id is None:
        assert rollout.gate_ref is not None
        promotion = governance_flows.request_promotion(
            session=session,
            store=store,
            principal=_principal(rollout),
            promotion_in=PromotionCreate(
                version_id=rollout.version_id,
                plant_id=plant_id,
                alias=AliasName.CHAMPION,
                policy=rollout.gate_ref,
                reason=f"rollout {rollout.id}, wave {rollout.waves[rollout.current_wave]}",
            ),
        )
        promotion_id = promotion.promotion.id
    begin_write(session)
    rollout = service.get_rollout_or_raise(session=session, rollout_id=rollout_id, lock=True)
    plant = next(
        p
        for p in service.plants_of(session=session, rollout_id=rollout_id)
        if p.plant_id == plant_id
    )
    plant.promotion_id = promotion_id
    _move(
        session,
        rollout,
        plant,
        PlantStage.PROMOTING,
        now,
        f"champion requested: promotion {promotion_id} under gate {rollout.gate_ref}",
        predictions=predictions,
    )
    commit_or_conflict(session, detail="the rollout changed concurrently")


def _existing_promotion(session: Session, rollout: Rollout, plant: RolloutPlant) -> int | None:
    """Return the champion request this rollout already made for the plant (after a restart)."""
    rows, _ = governance_service.list_promotions(
        session=session,
        plant_id=plant.plant_id,
        status=None,
        version_id=rollout.version_id,
        page_size=500,
        page_token=None,
    )
    mine = [
        r
        for r in rows
        if r.alias == AliasName.CHAMPION.value
        and r.created_at >= rollout.created_at
        and r.reason.startswith(f"rollout {rollout.id},")
    ]
    return mine[-1].id if mine else None


def _check_promotion(
    session: Session,
    store: ArtifactStore,
    rollout: Rollout,
    plan: RolloutPolicy,
    plant: RolloutPlant,
    now: dt.datetime,
) -> bool:
    if plant.promotion_id is None:
        return False
    promotion = governance_service.get_promotion_or_raise(
        session=session, promotion_id=plant.promotion_id
    )
    status = PromotionStatus(promotion.status)
    if status in (PromotionStatus.APPROVED, PromotionStatus.BREAK_GLASS):
        for alias in (AliasName.CHALLENGER, AliasName.SHADOW):
            registry_service.drop_alias(
                session=session,
                plant_id=plant.plant_id,
                model_id=registry_service.get_model_or_raise(
                    session=session, name=rollout.model
                ).id,
                alias=alias,
            )
        _move(
            session,
            rollout,
            plant,
            PlantStage.CHAMPION,
            now,
            f"champion through promotion {promotion.id} ({status.value})",
        )
        return True
    if status in (PromotionStatus.REFUSED, PromotionStatus.REJECTED):
        summary = (promotion.decision or {}).get("summary") or status.value
        _fail(
            session,
            store,
            rollout,
            plan,
            plant,
            f"promotion {promotion.id} {status.value}: {summary}",
            {"promotion_id": promotion.id},
            now,
        )
        return True
    return False


def _maybe_next_wave(session: Session, rollout: Rollout, now: dt.datetime) -> bool:
    plants = service.plants_of(session=session, rollout_id=rollout.id)
    current = [p for p in plants if p.wave == rollout.current_wave]
    if not all(PlantStage(p.stage).settled for p in current):
        return False
    name = rollout.waves[rollout.current_wave]
    if rollout.current_wave + 1 >= len(rollout.waves):
        service.finish(
            session=session,
            rollout=rollout,
            status=RolloutStatus.COMPLETED,
            detail=f"every wave done (last: {name})",
            now=now,
        )
        service.record_step(
            session=session,
            rollout=rollout,
            action="rollout.completed",
            now=now,
            reason=f"{len(plants)} plant(s) done",
        )
        webhooks_service.enqueue(
            session=session,
            event=WebhookEvent.ROLLOUT_COMPLETED,
            data={
                "rollout_id": rollout.id,
                "model": rollout.model,
                "version_id": rollout.version_id,
            },
        )
        audit_service.append(
            session=session,
            actor=_engine_actor(rollout),
            action="rollout.complete",
            subject=_subject(rollout),
            after={"status": RolloutStatus.COMPLETED.value},
        )
        return True
    rollout.current_wave += 1
    nxt = rollout.waves[rollout.current_wave]
    service.record_step(
        session=session,
        rollout=rollout,
        action="wave.advanced",
        now=now,
        reason=f"wave {name} done; wave {nxt} starts",
    )
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.ROLLOUT_WAVE_ADVANCED,
        data={"rollout_id": rollout.id, "completed": name, "next": nxt},
    )
    audit_service.append(
        session=session,
        actor=_engine_actor(rollout),
        action="rollout.wave",
        subject=_subject(rollout),
        before={"wave": name},
        after={"wave": nxt},
    )
    return True


# ---------------------------------------------------------------- failure and abort


def _fail(
    session: Session,
    store: ArtifactStore,
    rollout: Rollout,
    plan: RolloutPolicy,
    plant: RolloutPlant,
    reason: str,
    decision: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Handle a breach at ``plant``: halt, or abort the wave and roll it back."""
    service.record_step(
        session=session,
        rollout=rollout,
        action="criterion.breached",
        plant_id=plant.plant_id,
        reason=reason,
        decision=decision,
        now=now,
    )
    if FailureHandling(rollout.failure_handling) is FailureHandling.HALT:
        service.finish(
            session=session,
            rollout=rollout,
            status=RolloutStatus.HALTED,
            detail=f"halted at {plant.plant_id}: {reason}",
            now=now,
        )
        webhooks_service.enqueue(
            session=session,
            event=WebhookEvent.ROLLOUT_ABORTED,
            data={
                "rollout_id": rollout.id,
                "plant_id": plant.plant_id,
                "handling": "halt",
                "reason": reason,
            },
        )
        audit_service.append(
            session=session,
            actor=_engine_actor(rollout),
            action="rollout.halt",
            subject=_subject(rollout),
            after={"plant_id": plant.plant_id},
            reason=reason,
        )
        return
    _abort(
        session, rollout, f"breach at {plant.plant_id}: {reason}", _engine_actor(rollout), None, now
    )


def _abort(
    session: Session,
    rollout: Rollout,
    reason: str,
    actor: str,
    user_id: int | None,
    now: dt.datetime,
) -> None:
    """Roll back every plant of the current wave the rollout moved; skip the rest (flush only)."""
    model = registry_service.get_model_or_raise(session=session, name=rollout.model)
    for plant in service.plants_of(session=session, rollout_id=rollout.id):
        stage = PlantStage(plant.stage)
        if plant.wave != rollout.current_wave or stage is PlantStage.PENDING:
            if stage is PlantStage.PENDING:
                plant.stage = PlantStage.SKIPPED.value
                plant.detail = "not started: the rollout was aborted"
            continue
        if stage in (PlantStage.ROLLED_BACK, PlantStage.SKIPPED):
            continue
        for alias in (AliasName.CHALLENGER, AliasName.SHADOW):
            current = registry_service.find_alias(
                session=session, plant_id=plant.plant_id, model_id=model.id, alias=alias
            )
            if current is not None and current.version_id == rollout.version_id:
                registry_service.drop_alias(
                    session=session, plant_id=plant.plant_id, model_id=model.id, alias=alias
                )
        champion = registry_service.find_alias(
            session=session, plant_id=plant.plant_id, model_id=model.id, alias=AliasName.CHAMPION
        )
        note = "new version withdrawn"
        if (
            champion is not None
            and champion.version_id == rollout.version_id
            and plant.previous_version_id is not None
        ):
            previous = registry_service.get_version_or_raise(
                session=session, version_id=plant.previous_version_id
            )
            _rollback_plant(
                session,
                model=rollout.model,
                plant_id=plant.plant_id,
                current=rollout.version_id,
                target=previous,
                rollout_id=rollout.id,
                reason=f"rollout {rollout.id} aborted: {reason}",
                actor=actor,
                user_id=user_id,
            )
            note = f"champion back to {previous.version}"
        else:
            governance_service.set_lifecycle(
                session=session,
                plant_id=plant.plant_id,
                version_id=rollout.version_id,
                state=LifecycleState.ROLLED_BACK,
                promotion_id=None,
                actor=actor,
            )
        _move(session, rollout, plant, PlantStage.ROLLED_BACK, now, f"{note} ({reason})")
    service.finish(
        session=session, rollout=rollout, status=RolloutStatus.ABORTED, detail=reason, now=now
    )
    service.record_step(
        session=session, rollout=rollout, action="rollout.aborted", reason=reason, now=now
    )
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.ROLLOUT_ABORTED,
        data={
            "rollout_id": rollout.id,
            "wave": rollout.waves[rollout.current_wave],
            "handling": "rollback",
            "reason": reason,
        },
    )
    audit_service.append(
        session=session,
        actor=actor,
        action="rollout.abort",
        subject=_subject(rollout),
        after={"status": "aborted"},
        reason=reason,
    )


def set_status(
    *, session: Session, principal: Principal, rollout_id: int, action: str, reason: str
) -> Rollout:
    """Pause, resume or abort a rollout by hand (commits).

    Raises
    ------
    NotFound
        When the rollout does not exist.
    Conflict
        When the rollout is not in a state the action applies to.
    """
    actor = auth_service.actor_name(principal)
    begin_write(session)
    rollout = service.get_rollout_or_raise(session=session, rollout_id=rollout_id, lock=True)
    status = RolloutStatus(rollout.status)
    now = utcnow()
    if action == "abort":
        if not status.active:
            raise Conflict(f"rollout {rollout.id} is already {status.value}.")
        _abort(
            session,
            rollout,
            f"aborted by {actor}" + (f": {reason}" if reason else ""),
            actor,
            principal.user_id or None,
            now,
        )
    else:
        wanted = {
            "pause": (RolloutStatus.RUNNING,),
            "resume": (RolloutStatus.PAUSED, RolloutStatus.HALTED),
        }[action]
        if status not in wanted:
            raise Conflict(
                f"rollout {rollout.id} is {status.value}; {action} applies to "
                f"{' or '.join(s.value for s in wanted)} rollouts."
            )
        target = RolloutStatus.PAUSED if action == "pause" else RolloutStatus.RUNNING
        rollout.status = target.value
        service.record_step(
            session=session, rollout=rollout, action=f"rollout.{action}", reason=reason, now=now
        )
        audit_service.append(
            session=session,
            actor=actor,
            action=f"rollout.{action}",
            subject=_subject(rollout),
            before={"status": status.value},
            after={"status": target.value},
            reason=reason or None,
        )
    commit_or_conflict(session, detail="the rollout changed concurrently; retry")
    return rollout


# ---------------------------------------------------------------- rollback


def _rollback_plant(
    session: Session,
    *,
    model: str,
    plant_id: str,
    current: int | None,
    target: ModelVersion,
    rollout_id: int | None,
    reason: str,
    actor: str,
    user_id: int | None,
) -> Rollback:
    promotion = governance_flows.rollback_champion(
        session=session,
        actor=actor,
        user_id=user_id,
        version=target,
        plant_id=plant_id,
        reason=reason,
    )
    row = service.add_rollback(
        session=session,
        model=model,
        plant_id=plant_id,
        from_version_id=current,
        to_version_id=target.id,
        rollout_id=rollout_id,
        promotion_id=promotion.id,
        reason=reason,
        actor=actor,
    )
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.ROLLBACK,
        data={
            "rollback_id": row.id,
            "model": model,
            "plant_id": plant_id,
            "from_version_id": current,
            "to_version_id": target.id,
            "rollout_id": rollout_id,
            "reason": reason,
        },
    )
    audit_service.append(
        session=session,
        actor=actor,
        action="rollback",
        subject=f"alias:{plant_id}/{model}/champion",
        before={"version_id": current},
        after={"version_id": target.id, "rollout_id": rollout_id},
        reason=reason,
    )
    return row


def last_good_version(
    *, session: Session, plant_id: str, model: str, current: int | None
) -> int | None:
    """Return the version that was champion at the plant before the current one.

    A version that was rolled back is not good; the newest retired one is.
    """
    states = governance_service.list_lifecycle(session=session, plant_id=plant_id)
    retired = [
        s
        for s in states
        if s.model == model and s.state is LifecycleState.RETIRED and s.version_id != current
    ]
    retired.sort(key=lambda s: (s.updated_at, s.version_id))
    return retired[-1].version_id if retired else None


def rollback(*, session: Session, principal: Principal, body: RollbackCreate) -> list[Rollback]:
    """Point champion back at one plant or every plant of a model (commits once, all or none).

    Raises
    ------
    NotFound
        Unknown model, plant or target version.
    InvalidInput
        When the target version is of another model.
    Conflict
        When a plant has no champion, or no previous version to return to (named).
    """
    actor = auth_service.actor_name(principal)
    begin_write(session)
    model = registry_service.get_model_or_raise(session=session, name=body.model)
    if body.plant is not None:
        registry_service.get_plant_or_raise(session=session, plant_id=body.plant)
    champions = registry_service.list_alias_rows(
        session=session, alias=AliasName.CHAMPION, model_id=model.id, plant_id=body.plant
    )
    if not champions:
        where = f"plant '{body.plant}'" if body.plant else "any plant"
        raise Conflict(f"'{model.name}' has no champion at {where}; nothing to roll back.")
    target_row = None
    if body.to is not None:
        target_row = registry_service.get_version_or_raise(session=session, version_id=body.to)
        if target_row.model_id != model.id:
            raise InvalidInput(f"version {body.to} is not a version of '{model.name}'.")
    plan: list[tuple[str, int, ModelVersion]] = []
    missing: list[str] = []
    for alias in champions:
        if target_row is not None:
            if target_row.id != alias.version_id:
                plan.append((alias.plant_id, alias.version_id, target_row))
            continue
        good = last_good_version(
            session=session, plant_id=alias.plant_id, model=model.name, current=alias.version_id
        )
        if good is None:
            missing.append(alias.plant_id)
            continue
        plan.append(
            (
                alias.plant_id,
                alias.version_id,
                registry_service.get_version_or_raise(session=session, version_id=good),
            )
        )
    if missing:
        raise Conflict(
            f"no previous version of '{model.name}' to return to at plant(s) "
            f"{', '.join(missing)}; name one with 'to'.",
            errors=[{"path": "plant", "message": p} for p in missing],
        )
    reason = body.reason or f"rollback by {actor}"
    rows = [
        _rollback_plant(
            session,
            model=model.name,
            plant_id=plant_id,
            current=current,
            target=target,
            rollout_id=None,
            reason=reason,
            actor=actor,
            user_id=principal.user_id or None,
        )
        for plant_id, current, target in plan
    ]
    commit_or_conflict(session, detail="the champion changed concurrently; retry")
    return rows


def get_rollback_or_raise(*, session: Session, rollback_id: int) -> Rollback:
    """Return a rollback record.

    Raises
    ------
    NotFound
        When it does not exist.
    """
    row = session.get(Rollback, rollback_id)
    if row is None:
        raise NotFound(f"rollback {rollback_id} does not exist.")
    return row
