"""Masked projections of a person's fields: what the masked stage (support tools) may see.

The writer computes them from the validated values it already holds and seals each one
under the masked view's data key (``crypto`` kinds 3/4, KMS context ``"view": "masked"``);
the masked stage can open only those. The rules, one per field (docs/masked.md):

- ``name``, ``surname``: the first character and a full stop (``Grace`` -> ``G.``), or
  ``*`` for a one-character value, which its initial would show whole (``李`` -> ``*``);
- ``email``: the first character of the local part, ``***``, ``@`` and the domain
  (``grace@example.com`` -> ``g***@example.com``); a local part of one or two characters
  shows none of them (``jo@example.com`` -> ``***@example.com``);
- ``dob``: the year only (``1906-12-09`` -> ``1906``);
- ``address``: the city and the country only (``{"city": "London", "country": "GB"}``).

A projection is a pure function of the full value: rewriting a field rewrites its projection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_HIDDEN = "*"
_MIN_SHOWN_LOCAL_PART = 3  # shorter local parts would be guessed from their first character


def _initial(value: str) -> str:
    return _HIDDEN if len(value) <= 1 else f"{value[:1]}."


def _email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    shown = local[:1] if len(local) >= _MIN_SHOWN_LOCAL_PART else ""
    return f"{shown}***@{domain}"


def _year(value: str) -> str:
    return value[:4]


ADDRESS_SHOWN = ("city", "country")  # the address parts the masked view keeps


def _city_and_country(value: Mapping[str, str]) -> dict[str, str]:
    return {part: value[part] for part in ADDRESS_SHOWN}


MASKS: dict[str, Callable[[Any], Any]] = {
    "name": _initial,
    "surname": _initial,
    "email": _email,
    "dob": _year,
    "address": _city_and_country,
}


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """The masked projection of each validated person field in ``values``."""
    return {name: MASKS[name](value) for name, value in values.items()}
