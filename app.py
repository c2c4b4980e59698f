"""Lambda entry point. The stage's PII_VAULT_ROLE decides which routes or handlers exist."""

from chalicelib.stages.app import create_app

app = create_app()
