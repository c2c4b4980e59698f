"""A stage's merge template evaluated for one environment, as CloudFormation would evaluate it.

The ``chalice deploy`` path has no CloudFormation to resolve the merge template's intrinsics,
so what that path sets (``infra.chalice_config``, ``infra.postdeploy``) is read from the merge
template itself, resolved here: the two deploy paths cannot drift apart. Only the intrinsics the
stage templates use are known (``Ref`` of a parameter or pseudo-parameter, ``Fn::Sub`` of those,
``Fn::ImportValue`` of a base stack export, ``Fn::Join``, ``Fn::If`` with ``Fn::Not``/``Fn::Equals``
conditions, ``AWS::NoValue``); anything else raises, so a template that grows one fails here
instead of being deployed half-evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.cfn import APP, Json, TemplateError

_NO_VALUE = object()  # Ref AWS::NoValue: the property is removed
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass(frozen=True)
class Context:
    """What a stage stack sees: its parameter values (lists as lists), the base stack's outputs
    (output name -> value; imported as ``pii-vault-<env>-<name>``) and the pseudo-parameters."""

    environment: str
    parameters: Mapping[str, object]
    outputs: Mapping[str, str]
    pseudo: Mapping[str, str]

    def ref(self, name: str) -> object:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        raise TemplateError(f"Ref {name}: not a parameter of the stack or a known pseudo-parameter")

    def imported(self, export: str) -> str:
        prefix = f"{APP}-{self.environment}-"
        name = export.removeprefix(prefix)
        if not export.startswith(prefix) or name not in self.outputs:
            raise TemplateError(f"Fn::ImportValue {export}: not an output of the base stack")
        return self.outputs[name]


def pseudo_parameters(region: str, account: str, partition: str = "aws") -> dict[str, str]:
    return {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition}


def resolve_template(template: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """The template's ``Resources`` with every intrinsic evaluated (conditions included)."""
    conditions = {name: bool(_value(expr, context, {})) for name, expr in template.get("Conditions", {}).items()}
    resources: dict[str, Any] = {}
    for logical_id, resource in template["Resources"].items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        resources[logical_id] = _value(resource, context, conditions)
    return resources


def resolve_value(node: Json, context: Context) -> Any:
    """One property of a template (no conditions), evaluated."""
    return _value(node, context, {})


def _value(node: Json, context: Context, conditions: Mapping[str, bool]) -> Any:
    if isinstance(node, list):
        return [v for v in (_value(item, context, conditions) for item in node) if v is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, argument),) = node.items()
        if key == "Ref":
            return context.ref(argument)
        if key.startswith("Fn::") or key == "Condition":
            return _intrinsic(key, argument, context, conditions)
    return {k: v for k, v in ((k, _value(v, context, conditions)) for k, v in node.items()) if v is not _NO_VALUE}


def _intrinsic(key: str, argument: Json, context: Context, conditions: Mapping[str, bool]) -> Any:
    if key == "Fn::Sub" and isinstance(argument, str):
        # ${!Literal} is CloudFormation's escape for a literal ${Literal} (IAM policy variables).
        text = _SUB_VARIABLE.sub(lambda m: _text(context.ref(m.group(1))), argument)
        return text.replace("${!", "${")
    if key == "Fn::ImportValue":
        return context.imported(_text(_value(argument, context, conditions)))
    if key == "Fn::Join":
        separator, values = argument
        return separator.join(_text(v) for v in _value(values, context, conditions))
    if key == "Fn::If":
        name, when_true, when_false = argument
        return _value(when_true if conditions[name] else when_false, context, conditions)
    if key == "Fn::Not":
        (operand,) = argument
        return not _value(operand, context, conditions)
    if key == "Fn::Equals":
        left, right = (_value(v, context, conditions) for v in argument)
        return bool(left == right)
    if key == "Condition":
        return conditions[argument]
    raise TemplateError(f"{key} is not evaluated for the chalice deploy path (infra.resolve)")


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        raise TemplateError(f"a list where a string is expected: {value!r}")
    return str(value)
