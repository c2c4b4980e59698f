"""The local stack's ports: moto's, then one per API stage (``make dev``: 5000, 8001 on), each
settable by ``PII_VAULT_<NAME>_PORT``; and free ones, for runs beside ``make dev``."""

from __future__ import annotations

import socket

MOTO_PORT = 5000
FIRST_STAGE_PORT = 8001  # the API stages' ports follow, one each, in the registry's order


def port_variable(name: str) -> str:
    """The variable setting the port of moto or of an API stage: PII_VAULT_<NAME>_PORT."""
    return f"PII_VAULT_{name.upper()}_PORT"


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that is free right now (tests use these so they never clash with `make dev`)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
