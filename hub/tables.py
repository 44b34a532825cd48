"""The complete hub metadata: imports every domain's rows (for Alembic and tests)."""

from hub.alerts import models as alerts_models
from hub.audit import models as audit_models
from hub.auth import models as auth_models
from hub.campaigns import models as campaigns_models
from hub.db import Base
from hub.events import models as events_models
from hub.governance import models as governance_models
from hub.idempotency import models as idempotency_models
from hub.liveness import models as liveness_models
from hub.metrics import models as metrics_models
from hub.recipes import models as recipes_models
from hub.registry import models as registry_models
from hub.retraining import models as retraining_models
from hub.rollouts import models as rollouts_models
from hub.scheduler import apscheduler_jobs
from hub.webhooks import models as webhooks_models

metadata = Base.metadata

__all__ = [
    "alerts_models",
    "apscheduler_jobs",
    "audit_models",
    "auth_models",
    "campaigns_models",
    "events_models",
    "governance_models",
    "idempotency_models",
    "liveness_models",
    "metadata",
    "metrics_models",
    "recipes_models",
    "registry_models",
    "retraining_models",
    "rollouts_models",
    "webhooks_models",
]
