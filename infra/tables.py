"""The base stack's DynamoDB tables, rendered from their specs (``infra.specs.TABLES``)."""

from __future__ import annotations

from typing import Any

from infra.cfn import Resource, Template, app_tags, environment_name, getatt, ref
from infra.specs import STREAM_OUTPUT, TABLES, TableSpec


def table_resource(spec: TableSpec) -> Resource:
    """On demand; deletion protection and Retain for a protected table, Delete for the others."""
    properties: dict[str, Any] = {
        "TableName": environment_name(spec.suffix),
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": spec.key_schema(),
        "AttributeDefinitions": spec.attribute_definitions(),
    }
    if spec.indexes:
        properties["GlobalSecondaryIndexes"] = [index.definition() for index in spec.indexes]
    if spec.stream is not None:
        properties["StreamSpecification"] = {"StreamViewType": spec.stream}
    if spec.ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": spec.ttl, "Enabled": True}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": spec.backups}
    if spec.protected:
        properties["DeletionProtectionEnabled"] = True
    properties["Tags"] = app_tags()
    return Resource(
        "AWS::DynamoDB::Table",
        properties,
        deletion="Retain" if spec.protected else "Delete",
        skips=spec.skips,
    )


def add_tables(template: Template) -> None:
    """Every table, its name exported (and the stream of a table that has one)."""
    for spec in TABLES.values():
        template.add(spec.logical_id, table_resource(spec))
        template.output(spec.output, ref(spec.logical_id))
        if spec.stream is not None:
            template.output(STREAM_OUTPUT, getatt(spec.logical_id, "StreamArn"))
