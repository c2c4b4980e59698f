"""Lambda entry point. The stage's PII_VAULT_ROLE decides which routes exist."""

from chalicelib.api import create_app

app = create_app()
