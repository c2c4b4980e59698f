"""The stages of the app: the registry (importable without the app's wiring, as the templates
import it); ``chalicelib.stages.app.create_app`` builds a stage's app, ``wiring`` its parts."""

from chalicelib.stages.registry import (
    API_STAGE_NAMES,
    API_STAGES,
    JOB_STAGE_NAMES,
    JOB_STAGES,
    STAGE_NAMES,
    STAGES,
    Function,
    Stage,
    Trigger,
    settings_for,
    stage,
)

__all__ = [
    "API_STAGES",
    "API_STAGE_NAMES",
    "JOB_STAGES",
    "JOB_STAGE_NAMES",
    "STAGES",
    "STAGE_NAMES",
    "Function",
    "Stage",
    "Trigger",
    "settings_for",
    "stage",
]
