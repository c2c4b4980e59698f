"""DynamoDB (and DynamoDB Streams) requests as IAM authorizes them.

Sources, cited by tag in the rules below:

[FGAC] Using IAM policy conditions for fine-grained access control, DynamoDB Developer Guide,
       https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
[TX]   Using IAM with DynamoDB transactions,
       https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
[SAR]  Actions, resources, and condition keys for Amazon DynamoDB (Service Authorization Reference),
       https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
[API]  The DynamoDB API Reference page of each operation (its request parameters),
       https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_<Operation>.html

Parameters arrive as the wire JSON (``{"S": "..."}`` attribute values, blobs base64).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.recorder.model import Access, Context, Underivable, alternative


@dataclass(frozen=True)
class TableSchema:
    """Key attribute names of a table and of its indexes (index name -> its key attributes)."""

    hash_key: str
    range_key: str | None = None
    indexes: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def key_attributes(self, index: str | None = None) -> set[str]:
        keys = {self.hash_key, self.range_key}
        if index is not None and index in self.indexes:
            keys |= set(self.indexes[index])
        return {k for k in keys if k}

    def partition_key(self, index: str | None = None) -> str:
        return self.indexes[index][0] if index is not None and index in self.indexes else self.hash_key


Tables = Callable[[str], TableSchema | None]

# Parameters no condition key governs; recorded as sent (booleans and counts; a start key only
# as "present"). [SAR] lists the keys of each action: none of these is among them.
_UNGOVERNED = (
    "ReturnValuesOnConditionCheckFailure",
    "ConsistentRead",
    "Limit",
    "ScanIndexForward",
    "Segment",
    "TotalSegments",
    "ReturnItemCollectionMetrics",
    "ClientRequestToken",
)
_KEYWORDS = {"and", "or", "not", "between", "in", "set", "remove", "add", "delete"}
_TOKEN = re.compile(
    r"\s+|(?P<alias>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<index>\[\s*\d+\s*\])|(?P<dot>\.)|(?P<op><>|<=|>=|[=<>(),+\-])"
)


def expression_attributes(expression: str, names: Mapping[str, str]) -> set[str]:
    """Top-level attribute names an expression refers to: the first element of every document
    path (``a.b[0]`` names ``a``: [FGAC] "attribute names"), aliases resolved through
    ExpressionAttributeNames; function names, keywords and ``:values`` are not attributes."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise Underivable(f"cannot parse expression {expression!r} at {position}")
        position = match.end()
        if match.lastgroup:
            tokens.append((match.lastgroup, match.group()))
    found: set[str] = set()
    for i, (kind, text) in enumerate(tokens):
        if kind not in ("alias", "name"):
            continue
        if i > 0 and tokens[i - 1][0] == "dot":
            continue  # a nested path element, not an attribute of the item
        if kind == "name" and (text.lower() in _KEYWORDS or (i + 1 < len(tokens) and tokens[i + 1][1] == "(")):
            continue  # a keyword or a function call
        if kind == "alias":
            if text not in names:
                raise Underivable(f"expression names {text} but ExpressionAttributeNames has no such key")
            text = names[text]
        found.add(text)
    return found


def _legacy(params: Mapping[str, Any], *names: str) -> set[str]:
    """Attribute names of the legacy parameters [FGAC] lists for dynamodb:Attributes
    (AttributesToGet, AttributeUpdates, Expected, ScanFilter, QueryFilter, KeyConditions)."""
    found: set[str] = set()
    for name in names:
        value = params.get(name)
        if isinstance(value, Mapping):
            found |= set(value)
        elif isinstance(value, list):
            found |= {str(v) for v in value}
    return found


def _named(params: Mapping[str, Any], *expressions: str) -> set[str]:
    names = params.get("ExpressionAttributeNames") or {}
    found: set[str] = set()
    for expression in expressions:
        if params.get(expression):
            found |= expression_attributes(params[expression], names)
    return found


def _scalar(value: Mapping[str, Any]) -> str:
    (kind, raw), *rest = value.items()
    if rest or kind not in ("S", "N", "B"):
        raise Underivable(f"a key attribute value must be S, N or B: {sorted(value)}")
    return "<binary>" if kind == "B" else str(raw)  # binary keys are never recorded


def _leading(schema: TableSchema | None, items: Iterable[Mapping[str, Any]], index: str | None = None) -> list[str]:
    if schema is None:
        raise Underivable("unknown table: cannot tell its partition key")
    key = schema.partition_key(index)
    values = []
    for item in items:
        if key not in item:
            raise Underivable(f"item without its partition key {key}")
        values.append(_scalar(item[key]))
    return sorted(set(values))


def _query_leading(params: Mapping[str, Any], schema: TableSchema | None, index: str | None) -> list[str]:
    """The partition key value a Query names: ``<pk> = :v`` in KeyConditionExpression (or the
    EQ of legacy KeyConditions). [FGAC]: LeadingKeys "represents the first key attribute"."""
    if schema is None:
        raise Underivable("unknown table: cannot tell its partition key")
    key = schema.partition_key(index)
    if "KeyConditions" in params:
        condition = params["KeyConditions"].get(key, {})
        return [_scalar(v) for v in condition.get("AttributeValueList", [])[:1]]
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)", params.get("KeyConditionExpression", "")):
        if names.get(left, left) == key and right in values:
            return [_scalar(values[right])]
    raise Underivable(f"KeyConditionExpression names no equality on the partition key {key}")


def _partition_keys(values: list[str]) -> Context:
    """[FGAC] dynamodb:LeadingKeys "represents the first key attribute of a table"; [SAR] lists
    dynamodb:FirstPartitionKeyValues ("the first partition key of the table") beside it (the
    second to fourth exist for multi-attribute keys, which no pii-vault table has)."""
    return {"dynamodb:LeadingKeys": values, "dynamodb:FirstPartitionKeyValues": values}


def _attributes(named: set[str], keys: set[str]) -> tuple[Context, ...]:
    """dynamodb:Attributes (multivalued). [FGAC]: "a list of the attribute names in a request, or
    the attributes that are returned"; names "read, written, or evaluated in a conditional write
    or scan filter". Whether the key attributes count even where the request names them only as
    its key is not documented ([FGAC] requires policies to list them): both readings."""
    readings = []
    for names in (named, named - keys):
        reading: Context = {"dynamodb:Attributes": sorted(names)} if names else {}
        if reading not in readings:
            readings.append(reading)
    return tuple(readings)


def _item_select(params: Mapping[str, Any]) -> tuple[Context, ...]:
    """[SAR] lists dynamodb:Select for GetItem and BatchGetItem, which take no Select parameter;
    [FGAC] says Select "always has a value (ALL_ATTRIBUTES, unless otherwise specified)" and [API]
    Query makes a projection mean SPECIFIC_ATTRIBUTES. Readings: absent, or what the projection
    implies (SPECIFIC_ATTRIBUTES with one, ALL_ATTRIBUTES without)."""
    projected = bool(params.get("ProjectionExpression") or params.get("AttributesToGet"))
    return ({}, {"dynamodb:Select": "SPECIFIC_ATTRIBUTES" if projected else "ALL_ATTRIBUTES"})


def _ungoverned(params: Mapping[str, Any]) -> dict[str, Any]:
    found = {name: params[name] for name in _UNGOVERNED if name in params}
    if "ExclusiveStartKey" in params:
        found["ExclusiveStartKey"] = "present"
    return found


def _consumed(params: Mapping[str, Any]) -> tuple[Context, ...]:
    # [FGAC]: dynamodb:ReturnConsumedCapacity represents the parameter (default NONE [API]).
    return alternative("dynamodb:ReturnConsumedCapacity", params.get("ReturnConsumedCapacity"), "NONE")


def _return_values(params: Mapping[str, Any]) -> tuple[Context, ...]:
    # [FGAC]: "the ReturnValues parameter always has a value (NONE unless otherwise specified)".
    return alternative("dynamodb:ReturnValues", params.get("ReturnValues"), "NONE")


def table_arn(name: str, region: str, account: str, partition: str = "aws") -> str:
    """[SAR]: table resource arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName};
    requests may name a table by its ARN as well."""
    return name if name.startswith("arn:") else f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"


class ItemRequests:
    """Derives the accesses of one DynamoDB request."""

    def __init__(self, tables: Tables, region: str, account: str) -> None:
        self._tables = tables
        self._region = region
        self._account = account

    def _schema(self, name: str) -> TableSchema | None:
        return self._tables(name.split(":table/")[-1] if name.startswith("arn:") else name)

    def derive(self, operation: str, params: Mapping[str, Any]) -> list[Access]:
        handler = getattr(self, f"_{operation}", None)
        if handler is not None:
            result: list[Access] = handler(params)
            return result
        if operation.startswith(("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")):
            raise Underivable(f"PartiQL ({operation}) is not modelled")
        # Table administration and listings [SAR]: the table (or "*" when none is named).
        name = params.get("TableName")
        resource = table_arn(name, self._region, self._account) if name else "*"
        return [Access(f"dynamodb:{operation}", resource)]

    def _item(
        self,
        action: str,
        params: Mapping[str, Any],
        named: set[str],
        leading_items: list[Mapping[str, Any]],
        extra: tuple[tuple[Context, ...], ...] = (),
        enclosing: str | None = None,
    ) -> Access:
        name = params["TableName"]
        schema = self._schema(name)
        context: Context = _partition_keys(_leading(schema, leading_items))
        if enclosing:
            context["dynamodb:EnclosingOperation"] = enclosing  # [TX]
        keys = schema.key_attributes() if schema else set()
        return Access(
            action,
            table_arn(name, self._region, self._account),
            context,
            (_attributes(named, keys), *extra),
            _ungoverned(params),
        )

    # -- single-item operations ([FGAC] examples 1-3; [API] parameters) -------------------------

    def _GetItem(self, params: Mapping[str, Any], enclosing: str | None = None) -> list[Access]:
        named = set(params["Key"]) | _named(params, "ProjectionExpression") | _legacy(params, "AttributesToGet")
        select = _item_select(params)
        extra = (select,) if enclosing else (select, _consumed(params))
        return [self._item("dynamodb:GetItem", params, named, [params["Key"]], extra, enclosing)]

    def _PutItem(self, params: Mapping[str, Any], enclosing: str | None = None) -> list[Access]:
        named = set(params["Item"]) | _named(params, "ConditionExpression") | _legacy(params, "Expected")
        extra = () if enclosing else (_return_values(params), _consumed(params))
        return [self._item("dynamodb:PutItem", params, named, [params["Item"]], extra, enclosing)]

    def _UpdateItem(self, params: Mapping[str, Any], enclosing: str | None = None) -> list[Access]:
        named = set(params["Key"]) | _named(params, "UpdateExpression", "ConditionExpression")
        named |= _legacy(params, "AttributeUpdates", "Expected")
        extra = () if enclosing else (_return_values(params), _consumed(params))
        return [self._item("dynamodb:UpdateItem", params, named, [params["Key"]], extra, enclosing)]

    def _DeleteItem(self, params: Mapping[str, Any], enclosing: str | None = None) -> list[Access]:
        named = set(params["Key"]) | _named(params, "ConditionExpression") | _legacy(params, "Expected")
        extra = () if enclosing else (_return_values(params), _consumed(params))
        return [self._item("dynamodb:DeleteItem", params, named, [params["Key"]], extra, enclosing)]

    def _ConditionCheck(self, params: Mapping[str, Any], enclosing: str) -> list[Access]:
        # [TX]: "For the ConditionCheck action, you can use the dynamodb:ConditionCheckItem permission".
        named = set(params["Key"]) | _named(params, "ConditionExpression")
        return [self._item("dynamodb:ConditionCheckItem", params, named, [params["Key"]], (), enclosing)]

    # -- reads of many items -------------------------------------------------------------------

    def _select(self, params: Mapping[str, Any], projected: bool) -> tuple[Context, ...]:
        """[FGAC]: dynamodb:Select "represents the Select parameter of a Query or Scan request"
        and "always has a value (ALL_ATTRIBUTES, unless otherwise specified)"; [API] Query: with
        a ProjectionExpression the only valid Select is SPECIFIC_ATTRIBUTES. Not sent: every
        reading (absent, the documented default, and SPECIFIC_ATTRIBUTES with a projection)."""
        if params.get("Select"):
            return ({"dynamodb:Select": params["Select"]},)
        readings: list[Context] = [{}, {"dynamodb:Select": "ALL_ATTRIBUTES"}]
        if projected:
            readings.append({"dynamodb:Select": "SPECIFIC_ATTRIBUTES"})
        return tuple(readings)

    def _read_many(self, action: str, params: Mapping[str, Any], named: set[str], leading: list[str] | None) -> Access:
        name, index = params["TableName"], params.get("IndexName")
        schema = self._schema(name)
        # [FGAC] example 4 (and [SAR] index resource): a Query or Scan of an index is authorized
        # on the index ARN, table/<name>/index/<index>.
        resource = table_arn(name, self._region, self._account) + (f"/index/{index}" if index else "")
        projected = bool(params.get("ProjectionExpression") or params.get("AttributesToGet"))
        context: Context = {} if leading is None else _partition_keys(leading)
        keys = schema.key_attributes(index) if schema else set()
        alternatives = (_attributes(named, keys), self._select(params, projected), _consumed(params))
        return Access(action, resource, context, alternatives, _ungoverned(params))

    def _Query(self, params: Mapping[str, Any]) -> list[Access]:
        named = _named(params, "KeyConditionExpression", "ProjectionExpression", "FilterExpression")
        named |= _legacy(params, "KeyConditions", "AttributesToGet", "QueryFilter")
        leading = _query_leading(params, self._schema(params["TableName"]), params.get("IndexName"))
        return [self._read_many("dynamodb:Query", params, named, leading)]

    def _Scan(self, params: Mapping[str, Any]) -> list[Access]:
        # [FGAC] example 1: "Scan returns all items regardless of the leading keys": no LeadingKeys.
        named = _named(params, "ProjectionExpression", "FilterExpression") | _legacy(
            params, "AttributesToGet", "ScanFilter"
        )
        return [self._read_many("dynamodb:Scan", params, named, None)]

    # -- batches and transactions --------------------------------------------------------------

    def _BatchGetItem(self, params: Mapping[str, Any]) -> list[Access]:
        """[SAR]: dynamodb:BatchGetItem, authorized on each table in RequestItems."""
        accesses = []
        for name, request in params["RequestItems"].items():
            keys = request.get("Keys", [])
            named = {a for key in keys for a in key} | _named(request, "ProjectionExpression")
            named |= _legacy(request, "AttributesToGet")
            schema = self._schema(name)
            accesses.append(
                Access(
                    "dynamodb:BatchGetItem",
                    table_arn(name, self._region, self._account),
                    _partition_keys(_leading(schema, keys)),
                    (
                        _attributes(named, schema.key_attributes() if schema else set()),
                        _item_select(request),
                        _consumed(params),
                    ),
                    _ungoverned(request),
                )
            )
        return accesses

    def _BatchWriteItem(self, params: Mapping[str, Any]) -> list[Access]:
        """[SAR]: dynamodb:BatchWriteItem, authorized on each table in RequestItems."""
        accesses = []
        for name, writes in params["RequestItems"].items():
            items = [w["PutRequest"]["Item"] if "PutRequest" in w else w["DeleteRequest"]["Key"] for w in writes]
            schema = self._schema(name)
            accesses.append(
                Access(
                    "dynamodb:BatchWriteItem",
                    table_arn(name, self._region, self._account),
                    _partition_keys(_leading(schema, items)),
                    (
                        _attributes({a for i in items for a in i}, schema.key_attributes() if schema else set()),
                        _consumed(params),
                    ),
                    _ungoverned(params),
                )
            )
        return accesses

    def _TransactWriteItems(self, params: Mapping[str, Any]) -> list[Access]:
        """[TX]: each Put/Update/Delete is authorized as PutItem/UpdateItem/DeleteItem, each
        ConditionCheck as ConditionCheckItem, with dynamodb:EnclosingOperation TransactWriteItems.
        Transaction items take no ReturnValues ([API] TransactWriteItem): that key stays absent."""
        accesses = []
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            derive = {"Put": self._PutItem, "Update": self._UpdateItem, "Delete": self._DeleteItem}.get(kind)
            if derive is None and kind != "ConditionCheck":
                raise Underivable(f"TransactWriteItems item {kind}")
            found = derive(body, "TransactWriteItems") if derive else self._ConditionCheck(body, "TransactWriteItems")
            for access in found:
                if "ClientRequestToken" in params:
                    access.ungoverned["ClientRequestToken"] = "present"
                accesses.append(access)
        return accesses

    def _TransactGetItems(self, params: Mapping[str, Any]) -> list[Access]:
        """[TX]: each Get is authorized as GetItem, dynamodb:EnclosingOperation TransactGetItems."""
        return [a for item in params["TransactItems"] for a in self._GetItem(item["Get"], "TransactGetItems")]


def stream_accesses(operation: str, params: Mapping[str, Any]) -> list[Access]:
    """DynamoDB Streams: [SAR] dynamodb:DescribeStream, GetShardIterator and GetRecords on the
    stream ARN (table/<name>/stream/<label>); dynamodb:ListStreams takes no resource ("*").
    GetRecords names only a shard iterator: moto's begins with the stream ARN and a "|"."""
    if operation == "ListStreams":
        return [Access("dynamodb:ListStreams", "*")]
    if operation == "GetRecords":
        arn = str(params.get("ShardIterator", "")).split("|", 1)[0]
    else:
        arn = str(params.get("StreamArn", ""))
    if ":dynamodb:" not in arn or "/stream/" not in arn:
        raise Underivable(f"{operation}: cannot tell the stream ARN")
    return [Access(f"dynamodb:{operation}", arn)]
