"""The HTTP edge (blueprints per API stage, typed request parsing, error -> status, views)
and the job stages' Lambda entry points (``functions``). Apps are built by
``chalicelib.stages.create_app``."""
