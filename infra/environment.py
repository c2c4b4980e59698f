"""A stage's function environment, from the settings the stage reads (the registry).

Each setting's source decides where its value comes from in a deployed environment:

- a table's name, a key's ARN, the PII table's stream: the base stack's export;
- the caller allow-list: the stage stack's ``AllowedCallers`` parameter;
- a tunable: a stage stack parameter of its own (``infra.params.tunable_parameter``), whose
  default is the setting's default and whose value ``deploy/params/<env>.json`` may set;
- a local-only setting (``PII_VAULT_LOCAL_CALLER``): never deployed.

``variables`` renders them for a merge template; ``resolve`` evaluates them for one
environment from the base stack's outputs and the stage's parameters (the chalice deploy
path, the offline rehearsal), so both deploy paths run with the same environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.stages import Stage
from chalicelib.support.config import default_text, setting_domain
from chalicelib.support.environment import (
    ROLE_VARIABLE,
    Callers,
    KeyArn,
    LocalOnly,
    StreamArn,
    TableName,
    Tunable,
    Variable,
)
from infra.cfn import Json, import_value, join, ref
from infra.specs import KEYS, STREAM_OUTPUT, TABLES

CALLERS_PARAMETER = "AllowedCallers"


@dataclass(frozen=True)
class Export:
    """An output of the base stack, imported by name."""

    name: str


@dataclass(frozen=True)
class Parameter:
    """A parameter of the stage's stack; a list parameter is joined with commas."""

    name: str
    default: str = ""
    is_list: bool = False


@dataclass(frozen=True)
class Literal:
    value: str


Value = Export | Parameter | Literal


def tunable_parameter(variable: Variable) -> str:
    """The stack parameter of a tunable setting: ``PII_VAULT_WRITER_KEY_CACHE_SECONDS`` ->
    ``WriterKeyCacheSeconds``."""
    words = variable.env.removeprefix("PII_VAULT_").split("_")
    return "".join(word.capitalize() for word in words)


def source_value(variable: Variable) -> Value | None:
    """Where a deployed function's value of ``variable`` comes from (None: not deployed)."""
    source = variable.source
    if isinstance(source, TableName):
        return Export(TABLES[source.table].output)
    if isinstance(source, KeyArn):
        # Pinned by ARN in every deployed function (config refuses an alias there): an alias
        # could be re-pointed.
        return Export(KEYS[source.key].output)
    if isinstance(source, StreamArn):
        return Export(STREAM_OUTPUT)
    if isinstance(source, Callers):
        # The same list as the API resource policy's: the function's own check (defence in depth).
        return Parameter(CALLERS_PARAMETER, is_list=True)
    if isinstance(source, Tunable):
        return Parameter(tunable_parameter(variable), default_text(variable.field), is_list_setting(variable))
    if isinstance(source, LocalOnly):
        return None
    raise TypeError(f"unknown setting source {source!r}")


def stage_values(stage: Stage) -> dict[str, Value]:
    """Variable name -> value source, for every deployed setting of the stage, and its role."""
    values: dict[str, Value] = {ROLE_VARIABLE: Literal(stage.name)}
    for variable in stage.variables:
        value = source_value(variable)
        if value is not None:
            values[variable.env] = value
    return values


def tunable_settings(stage: Stage) -> list[Variable]:
    return [v for v in stage.variables if isinstance(v.source, Tunable)]


def is_list_setting(variable: Variable) -> bool:
    return setting_domain(variable.field)[0] == "list"


def render(value: Value) -> Json:
    """The value as a merge template writes it."""
    if isinstance(value, Export):
        return import_value(value.name)
    if isinstance(value, Parameter):
        return join(",", ref(value.name)) if value.is_list else ref(value.name)
    return value.value


def variables(stage: Stage) -> dict[str, Json]:
    """The function environment of a merge template."""
    return {name: render(value) for name, value in stage_values(stage).items()}


def resolve(stage: Stage, outputs: Mapping[str, str], parameters: Mapping[str, object]) -> dict[str, str]:
    """The function environment in one environment: ``outputs`` of the base stack (output
    name -> value), ``parameters`` of the stage (name -> value, lists as lists; a tunable
    absent takes its default), as CloudFormation would resolve the merge template."""
    resolved: dict[str, str] = {}
    for name, value in stage_values(stage).items():
        if isinstance(value, Export):
            resolved[name] = outputs[value.name]
        elif isinstance(value, Parameter):
            given = parameters.get(value.name, value.default)
            resolved[name] = ",".join(map(str, given)) if isinstance(given, list | tuple) else str(given)
        else:
            resolved[name] = value.value
    return resolved
