"""Registry use cases, one sub-domain per module; this facade re-exports them.

Every public function takes the session first (keyword-only), returns rows or raises a
:class:`~federation.errors.MillwrightError`. Use cases commit once; helpers only flush.

- :mod:`.plants`: plant enrollment and lookup
- :mod:`.baseline_models`: baseline models
- :mod:`.artifacts`: artifact rows and blob checks
- :mod:`.versions`: version registration and row lookups
- :mod:`.version_reads`: plain-row version pages and reads
- :mod:`.tags`: version tags
- :mod:`.diffs`: version comparison
- :mod:`.aliases`: plant aliases
- :mod:`.assignments`: what a plant should run
"""

from hub.registry.service.aliases import (
    alias_heads,
    delete_alias,
    drop_alias,
    find_alias,
    get_alias_or_raise,
    list_alias_rows,
    list_aliases,
    list_aliases_of,
    point_alias,
    refuse_champion,
    set_alias,
)
from hub.registry.service.artifacts import (
    artifact_assigned_to_plant,
    blob_matches_digest,
    get_artifact,
    get_artifact_or_raise,
    register_artifact,
    stored_blob_or_raise,
)
from hub.registry.service.assignments import (
    assignments_etag,
    list_assignments,
)
from hub.registry.service.baseline_models import (
    create_model,
    get_model,
    get_model_by_id,
    get_model_or_raise,
    list_models,
)
from hub.registry.service.diffs import (
    diff_versions,
)
from hub.registry.service.plants import (
    create_plant,
    get_plant,
    get_plant_or_raise,
    list_plants,
    plants_by_ids,
    update_plant,
)
from hub.registry.service.tags import (
    delete_tag,
    set_tag,
)
from hub.registry.service.version_reads import (
    VersionFilters,
    get_alias_version_or_raise,
    get_version_read_or_raise,
    list_versions,
    read_from_row,
    render_versions_page,
    version_rows,
)
from hub.registry.service.versions import (
    PromotionTarget,
    create_version,
    create_versions,
    get_version,
    get_version_by_label_or_raise,
    get_version_or_raise,
    promotion_target_or_raise,
    versions_by_ids,
)

__all__ = [
    "PromotionTarget",
    "promotion_target_or_raise",
    "VersionFilters",
    "artifact_assigned_to_plant",
    "blob_matches_digest",
    "create_model",
    "create_plant",
    "create_version",
    "create_versions",
    "delete_alias",
    "drop_alias",
    "find_alias",
    "delete_tag",
    "diff_versions",
    "get_alias_or_raise",
    "get_alias_version_or_raise",
    "get_artifact",
    "get_artifact_or_raise",
    "get_model",
    "get_model_by_id",
    "get_model_or_raise",
    "get_plant",
    "get_plant_or_raise",
    "get_version",
    "get_version_by_label_or_raise",
    "get_version_or_raise",
    "get_version_read_or_raise",
    "alias_heads",
    "list_alias_rows",
    "list_aliases",
    "list_aliases_of",
    "assignments_etag",
    "list_assignments",
    "list_models",
    "list_plants",
    "list_versions",
    "plants_by_ids",
    "point_alias",
    "read_from_row",
    "register_artifact",
    "render_versions_page",
    "refuse_champion",
    "set_alias",
    "set_tag",
    "stored_blob_or_raise",
    "update_plant",
    "versions_by_ids",
    "version_rows",
]
