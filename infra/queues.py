"""The base stack's SQS queue: the indexer's on-failure destination (``infra.specs.FAILURE_QUEUE``)."""

from __future__ import annotations

from infra.cfn import Resource, Template, app_tags, environment_name, getatt
from infra.specs import FAILURE_QUEUE, QueueSpec


def queue_resource(spec: QueueSpec) -> Resource:
    """Encrypted at rest with SQS-managed keys (SSE-SQS): a message holds stream positions and ids
    only, so no customer key (and no key-policy statement for the Lambda service) is needed."""
    return Resource(
        "AWS::SQS::Queue",
        {
            "QueueName": environment_name(spec.suffix),
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": spec.retention_seconds,
            "Tags": app_tags(),
        },
        skips={
            "CKV_AWS_27": "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which this check does not "
            "recognise (it looks for KmsMasterKeyId only). A message holds stream positions (shard id, sequence "
            "numbers, batch size), never a record; a KMS key would need the indexer role to hold "
            "kms:GenerateDataKey, a data-key permission no job of this design has.",
        },
    )


def add_queues(template: Template) -> None:
    template.add(FAILURE_QUEUE.logical_id, queue_resource(FAILURE_QUEUE))
    template.output(FAILURE_QUEUE.output, getatt(FAILURE_QUEUE.logical_id))
