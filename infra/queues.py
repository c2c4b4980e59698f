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
    )


def add_queues(template: Template) -> None:
    template.add(FAILURE_QUEUE.logical_id, queue_resource(FAILURE_QUEUE))
    template.output(FAILURE_QUEUE.output, getatt(FAILURE_QUEUE.logical_id))
