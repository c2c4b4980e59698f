"""Masked read routes: people only, masked projections only. Registered only in the ``masked`` stage.

The reader's people routes (``people_reads``), answered from masked projections; no
secrets, no search.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint

from chalicelib.api import contract
from chalicelib.api.people_reads import add_people_routes
from chalicelib.service import MaskedService


def masked_blueprint(service: Callable[[], MaskedService]) -> Blueprint:
    bp = Blueprint(__name__)
    add_people_routes(bp, service, contract.masked_operation)
    return bp
