import sys

from pii_vault_client.cli import main

sys.exit(main(prog="python -m pii_vault_client"))
