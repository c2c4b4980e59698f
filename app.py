"""Lambda entry point. The stage's PII_VAULT_ROLE decides which routes or handlers exist.

Lambda finds a function's handler as an attribute of this module: ``app.app`` serves an API
stage's routes; a job stage's functions are ``app.<function>`` (``chalice package`` names them
so), exported here from the stage's app."""

from chalicelib.stages.app import create_app, lambda_handlers

app = create_app()
globals().update(lambda_handlers(app))
