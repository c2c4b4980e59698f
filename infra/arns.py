"""The resource ARNs a policy names, for one account (strings) or for the base stack (intrinsics).

The policy generator (``infra.iam``) asks an ``Arns`` for every ARN it writes: a key, a
table, an index or the stream of a table, a function's log group, the tenant keys of an
account. ``AccountArns`` answers with validated ARN strings (an account, moto, the tests,
the policy evaluator); ``StackArns`` with the base template's intrinsics, derived from the
table and key specs (``!GetAtt PiiTable.Arn``, ``${AWS::Region}``, ``${Environment}``).
One generator, two renderings: no sentinel ARNs to substitute afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.stages import stage
from chalicelib.support.environment import Key, Table
from infra.cfn import APP, ENV_PREFIX, Json, getatt, sub
from infra.specs import FAILURE_QUEUE, KEYS, TABLES


class InvalidResourceError(ValueError):
    """An input ARN cannot be turned into a scoped policy."""


def function_name(stage_name: str, function: str, prefix: str = APP) -> str:
    """A deployed function's name: ``<prefix>-<stage>`` for an API stage's one function,
    ``<prefix>-<stage>-<function>`` for a job stage's (chalice deploy's ``<app>-<stage>[-<name>]``;
    the templates' prefix is ``pii-vault-${Environment}``)."""
    if stage(stage_name).kind == "api":
        return f"{prefix}-{stage_name}"
    return f"{prefix}-{stage_name}-{function}"


class Arns(Protocol):
    def key(self, key: Key) -> Json: ...

    def table(self, table: Table) -> Json: ...

    def index(self, table: Table, index: str) -> Json: ...

    def stream(self, table: Table) -> Json: ...

    def log_group(self, stage_name: str, function: str) -> list[Json]:
        """The function's log group, in both forms CloudWatch Logs authorizes against."""
        ...

    def tenant_keys(self) -> list[Json]:
        """Every key of the account (and of the customer accounts): tenant keys are reached by tag."""
        ...

    def failure_queue(self) -> Json:
        """The indexer's on-failure destination (``infra.specs.FAILURE_QUEUE``)."""
        ...


_PARTITION = r"(?P<partition>aws|aws-cn|aws-us-gov)"
_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
_ACCOUNT = r"(?P<account>\d{12})"
KEY_ARN = re.compile(
    rf"^arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
TABLE_ARN = re.compile(rf"^arn:{_PARTITION}:dynamodb:{_REGION}:{_ACCOUNT}:table/[A-Za-z0-9_.-]{{3,255}}$")


def key_scope(key_arn: object, name: str = "key_arn") -> tuple[str, str, str]:
    """(partition, region, account) of a KMS key ARN; aliases and wildcards refused."""
    match = KEY_ARN.match(key_arn) if isinstance(key_arn, str) else None
    if match is None:
        raise InvalidResourceError(
            f"{name} {key_arn!r} is not a KMS key ARN "
            "(arn:aws:kms:<region>:<account>:key/<key-id>); aliases and wildcards are "
            "refused because IAM evaluates KMS permissions against the key ARN"
        )
    return match["partition"], match["region"], match["account"]


def table_scope(table_arn: object, name: str = "table_arn") -> tuple[str, str, str]:
    match = TABLE_ARN.match(table_arn) if isinstance(table_arn, str) else None
    if match is None:
        raise InvalidResourceError(
            f"{name} {table_arn!r} is not a DynamoDB table ARN "
            "(arn:aws:dynamodb:<region>:<account>:table/<name>); indexes and wildcards are refused"
        )
    return match["partition"], match["region"], match["account"]


@dataclass(frozen=True)
class AccountArns:
    """The ARNs of one environment in one account: validated, in one partition, region and
    account, keys distinct. A key or table the environment lacks is simply absent; a policy
    that needs it raises. ``functions``: the deployed functions' name prefix."""

    keys: Mapping[Key, str]
    tables: Mapping[Table, str]
    functions: str = APP
    customer_accounts: tuple[str, ...] = ()
    scope: tuple[str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        scopes = {key_scope(arn, f"the {key} key ARN") for key, arn in self.keys.items()}
        scopes |= {table_scope(arn, f"the {table} table ARN") for table, arn in self.tables.items()}
        if len(scopes) != 1:
            raise InvalidResourceError(
                "every key and table must be in the same partition, region and account" if scopes else "no ARN given"
            )
        if len(set(self.keys.values())) != len(self.keys):
            raise InvalidResourceError("the data, fleet and beacon keys must be different keys")
        for account in self.customer_accounts:
            if not re.fullmatch(r"\d{12}", account):
                raise InvalidResourceError(f"customer account {account!r} is not a 12-digit account id")
        object.__setattr__(self, "scope", scopes.pop())

    @classmethod
    def of(
        cls,
        table_arn: str,
        keys: Mapping[Key, str],
        *,
        functions: str = APP,
        customer_accounts: tuple[str, ...] = (),
    ) -> AccountArns:
        """Every table named after the PII table's ARN (``<table><suffix>``), as deployed."""
        table_scope(table_arn)
        tables = {table: table_arn + spec.suffix for table, spec in TABLES.items()}
        return cls(keys, tables, functions=functions, customer_accounts=customer_accounts)

    def key(self, key: Key) -> str:
        if key not in self.keys:
            raise InvalidResourceError(f"the policy needs the {key} key ARN")
        return self.keys[key]

    def table(self, table: Table) -> str:
        if table not in self.tables:
            raise InvalidResourceError(f"the policy needs the {table} table ARN")
        return self.tables[table]

    def index(self, table: Table, index: str) -> str:
        return f"{self.table(table)}/index/{index}"

    def stream(self, table: Table) -> str:
        return f"{self.table(table)}/stream/*"

    def log_group(self, stage_name: str, function: str) -> list[Json]:
        partition, region, account = self.scope
        name = function_name(stage_name, function, self.functions)
        group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{name}"
        return [group, f"{group}:*"]

    def tenant_keys(self) -> list[Json]:
        partition, region, account = self.scope
        return [f"arn:{partition}:kms:{region}:{a}:key/*" for a in (account, *self.customer_accounts)]

    def failure_queue(self) -> str:
        """Named after the PII table, as deployed (``<table><suffix>``)."""
        partition, region, account = self.scope
        table_name = self.table(Table.PII).rsplit("/", 1)[-1]
        return f"arn:{partition}:sqs:{region}:{account}:{table_name}{FAILURE_QUEUE.suffix}"


class StackArns:
    """The base stack's ARNs as intrinsics: its keys and tables by ``!GetAtt``, the functions'
    log groups and the account's keys by ``Fn::Sub`` with the pseudo-parameters."""

    def key(self, key: Key) -> Json:
        return getatt(KEYS[key].logical_id)

    def table(self, table: Table) -> Json:
        return getatt(TABLES[table].logical_id)

    def index(self, table: Table, index: str) -> Json:
        return sub(f"${{{TABLES[table].logical_id}.Arn}}/index/{index}")

    def stream(self, table: Table) -> Json:
        return sub(f"${{{TABLES[table].logical_id}.Arn}}/stream/*")

    def log_group(self, stage_name: str, function: str) -> list[Json]:
        name = function_name(stage_name, function, ENV_PREFIX)
        group = f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{name}"
        return [sub(group), sub(f"{group}:*")]

    def tenant_keys(self) -> list[Json]:
        return [sub("arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*")]

    def failure_queue(self) -> Json:
        return getatt(FAILURE_QUEUE.logical_id)
