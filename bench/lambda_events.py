"""Lambda invocations of every stage's functions against a local moto server, as the cold-start
benchmark sends them: a representative first request per function (and a second, warm one).

- API stages (``api_handler``): the API Gateway REST proxy event of one route, signed as a
  session of the local caller's role (on every API stage's allow-list): the writer creates a
  person, the reader reads one, the masked stage reads one's masked view.
- ``index_beacons``: the stream record of a person's write (its ``NewImage`` as stored).
- ``backfill``: a dry run of one segment over the whole (small) table (every person read and
  its beacon computed, nothing written, so the first and the warm request do the same work);
  ``offboard`` and ``rewrap``: one segment for a tenant with no records (the job's reads and
  bookkeeping, nothing to move).

The persons the events name are written beforehand by a writer built in this process
(``seed``), so every run of a function meets the same state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.stages import REGION, STAGES, deployed_environment, stage
from tools.sample import people

CUSTOMER = "cold-start"
EMPTY_TENANT = "cold-start-empty"
PEOPLE = "/customers/{customer_id}/people"
PERSON = "/customers/{customer_id}/people/{person_id}"


def api_event(method: str, route: str, params: Mapping[str, str], body: Any = None) -> dict[str, Any]:
    """An API Gateway REST proxy event (as API Gateway sends it with an IAM authorizer)."""
    from tools.devstack import LOCAL_CALLER

    path = route.format(**params)
    return {
        "resource": route,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "accept": "application/json"},
        "multiValueHeaders": {"content-type": ["application/json"], "accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(params),
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"userArn": LOCAL_CALLER, "accountId": "000000000000", "sourceIp": "192.0.2.1"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def stream_event(keys: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB stream batch of one INSERT, as Lambda delivers the table's stream (KEYS_ONLY)."""
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "Keys": dict(keys),
                    "SequenceNumber": str(uuid.uuid4().int % 10**20),
                    "SizeBytes": 120,
                    "StreamViewType": "KEYS_ONLY",
                },
                "eventSourceARN": stream_arn,
            }
        ]
    }


@dataclass
class Seeded:
    """What the events name: persons written before any measured process starts."""

    resources: dict[str, str]
    person_ids: list[str] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)  # table keys, one per person id
    rewrap_target: str = ""


def seed(resources: dict[str, str], clients: Mapping[str, Any], count: int) -> Seeded:
    """``count`` persons written through the writer stage's own app (its deployed settings)."""
    from chalicelib.stages import settings_for
    from chalicelib.stages.app import create_app
    from chalicelib.store import layout

    env = {**deployed_environment("writer", resources), "AWS_DEFAULT_REGION": REGION}
    writer = create_app(settings=settings_for(env), kms_client=clients["kms"], dynamodb_client=clients["dynamodb"])
    seeded = Seeded(resources)
    for body in people(count, seed=23):
        response = writer(api_event("POST", PEOPLE, {"customer_id": CUSTOMER}, body), None)
        if response["statusCode"] != 201:
            raise RuntimeError(f"seeding the cold-start person failed: {response['statusCode']} {response['body']}")
        person_id = json.loads(response["body"])["id"]
        seeded.person_ids.append(person_id)
        seeded.keys.append(layout.person_key(CUSTOMER, person_id))
    seeded.rewrap_target = clients["kms"].create_key(Description="cold-start rewrap target")["KeyMetadata"]["Arn"]
    return seeded


def invocations(stage_name: str, function: str, seeded: Seeded, run: int) -> list[dict[str, Any]]:
    """The events of one measured process of ``function``: its first request, then a warm one.

    Run ``run`` of the indexer meets persons of its own (an indexed person is skipped)."""
    from chalicelib.stages.registry import API_FUNCTION

    ids = seeded.person_ids
    if function == API_FUNCTION:
        if stage_name == "writer":
            bodies = people(2, seed=1000 + run)
            return [api_event("POST", PEOPLE, {"customer_id": CUSTOMER}, body) for body in bodies]
        return [api_event("GET", PERSON, {"customer_id": CUSTOMER, "person_id": ids[0]})] * 2
    job: dict[str, Any] = {
        "job": f"cold-start-{function}-{run}-{uuid.uuid4().hex[:8]}",
        "segment": 0,
        "total_segments": 1,
    }
    if function == "index_beacons":
        first = 1 + 2 * run
        return [stream_event(keys, seeded.resources["stream_arn"]) for keys in seeded.keys[first : first + 2]]
    if function == "backfill":
        event = {**job, "dry_run": True}
        return [event, {**event, "job": event["job"] + "-warm"}]
    if function == "offboard":
        event = {**job, "customer_id": EMPTY_TENANT}
        return [event, {**event, "job": event["job"] + "-warm"}]
    if function == "rewrap":
        source = seeded.resources["key_arn"]
        event = {**job, "customer_id": EMPTY_TENANT, "source_key": source, "target_key": seeded.rewrap_target}
        return [event, {**event, "job": event["job"] + "-warm"}]
    raise ValueError(f"no cold-start event for {stage_name}/{function}")


def functions() -> list[tuple[str, str, str]]:
    """(stage, function, trigger) for every function of every stage in the registry."""
    return [(s.name, f.name, str(f.trigger)) for s in STAGES for f in s.functions]


def persons_needed(runs: int) -> int:
    """One person the API stages read, two per indexer run (first and warm request)."""
    return 1 + 2 * runs


def handler_name(stage_name: str, function: str) -> str:
    """The attribute of ``app.py`` Lambda calls (``chalice package``'s ``Handler`` is ``app.<this>``)."""
    from chalicelib.stages.registry import API_FUNCTION

    if function not in {f.name for f in stage(stage_name).functions}:
        raise ValueError(f"the {stage_name} stage has no function {function!r}")
    return "app" if function == API_FUNCTION else function
