"""Sample people, one source for the benchmark, the load script and the tests.

Every person here passes pii-vault's validation and is already in the form the reader
returns (trimmed, normalised), so a round trip compares equal. Nothing from chalicelib
is imported and no deployed code imports this module.

- ``PERSON``: the one fixture person of the tests (every address field, non-ASCII text,
  values of 6+ characters that the no-plaintext guard can look for); take a copy with
  ``person()``, its searchable values with ``plaintexts()``.
- ``people(count, seed)``: a deterministic list for the benchmark.
- ``random_person(rng)``: a unique person per call for the load script.
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

PERSON: dict[str, Any] = {
    "name": "Mirabelle",
    "surname": "Quenneville",
    "email": "mirabelle.q@example.org",
    "dob": "1987-04-23",
    "address": {
        "line1": "77 Rue Oberkampf",
        "line2": "Bâtiment C",
        "city": "Montréal-Est",
        "postal_code": "H1B 5K9",
        "region": "Québec",
        "country": "CA",
    },
}


def person(**changes: Any) -> dict[str, Any]:
    """A deep copy of ``PERSON`` with top-level fields replaced."""
    return {**copy.deepcopy(PERSON), **changes}


def plaintexts(who: dict[str, Any] = PERSON) -> tuple[str, ...]:
    """The values of a person worth searching for: 6+ characters (shorter ones turn up in random
    bytes by chance), the country code left out (a code, not a secret)."""
    address = who.get("address", {})
    values = [who[k] for k in ("name", "surname", "email", "dob") if k in who]
    values += [v for k, v in address.items() if k != "country"]
    return tuple(v for v in values if len(v) >= 6)


_FIRST = ("Grace", "Ada", "Mirabelle", "Kwame", "Yuki", "Olamide", "Søren", "Lucía", "Priya", "Mateo")
_LAST = ("Hopper", "Lovelace", "Quenneville", "Mensah", "Tanaka", "Adeyemi", "Kierkegaard", "García")
_CITIES = (
    ("London", "GB", "E1 6AN"),
    ("Montréal", "CA", "H2X 1Y4"),
    ("Osaka", "JP", "530-0001"),
    ("Lagos", "NG", "100001"),
    ("Madrid", "ES", "28013"),
    ("Austin", "US", "78701"),
)


def people(count: int, seed: int = 20261124) -> list[dict[str, Any]]:
    """Deterministic, plausible people (the benchmark's records)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        name, surname = rng.choice(_FIRST), rng.choice(_LAST)
        city, country, postal = rng.choice(_CITIES)
        local_part = f"{name}.{surname}".lower().replace("ø", "o").replace("í", "i")
        out.append(
            {
                "name": name,
                "surname": surname,
                "email": f"{local_part}{n}@example.org",
                "dob": f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "address": {
                    "line1": f"{rng.randint(1, 999)} {rng.choice(['High St', 'Rue Oberkampf', 'Main St'])}",
                    "city": city,
                    "postal_code": postal,
                    "country": country,
                },
            }
        )
    return out


_WORDS = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Tim", "Zoë", "Łukasz", "Søren", "Ngozi")
_COUNTRIES = ("GB", "FR", "DE", "NG", "JP", "BR", "US", "PL")


def random_person(rng: random.Random) -> dict[str, Any]:
    """A unique person from ``rng`` (the load script's creates and patches)."""
    name, surname = rng.choice(_WORDS), rng.choice(_WORDS) + "-" + uuid.UUID(int=rng.getrandbits(128)).hex[:6]
    address: dict[str, str] = {
        "line1": f"{rng.randint(1, 999)} {rng.choice(_WORDS)} Street",
        "city": rng.choice(_WORDS) + "ville",
        "postal_code": f"{rng.randint(10000, 99999)}",
        "country": rng.choice(_COUNTRIES),
    }
    if rng.random() < 0.5:
        address["line2"] = f"Flat {rng.randint(1, 99)}"
    if rng.random() < 0.3:
        address["region"] = rng.choice(_WORDS) + "shire"
    return {
        "name": name,
        "surname": surname,
        "email": f"p{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}@example.org",
        "dob": f"{rng.randint(1920, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": address,
    }
