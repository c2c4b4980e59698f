"""The recorded-request proof: every AWS request a stage's code sends, judged by the policies
that will govern it on AWS.

moto enforces no IAM, and ignores what a request's parameters reveal to IAM. So every request
the integration and e2e tiers send is recorded where moto authorizes it (tools/recorder/): its
principal (the access key that signed it: each stage signs with credentials of its own, setup
code with the operator's, tools/recorder/principals.py), and its accesses (action, resource,
every condition key AWS derives from the parameters). Each stage's accesses are judged here by
tests/policy_eval.py against that stage's identity policies and, for KMS, the key's policy,
exactly as generated for the deployable base stack (tests/policy_source.py), with this run's
ARNs in place of the template's intrinsics.

The suite fails on:
- a request that is denied under any documented reading of its condition keys (the test that
  sent it fails at teardown; the local stack's at the end of the session), with the stage, the
  action, the resource, the condition keys and the statement that came closest;
- a request no principal can be named for: an access key that is neither a stage's nor the
  operator's nor ``register``-ed, or deployed code (chalicelib) on the call stack of a request
  signed as the operator, unless declared with ``operator_code(reason)``;
- a request the recorder cannot derive (an operation or expression it does not model).

At the end it prints, per stage, the grants no recorded request used (Sid, action, resource),
and writes them with the counts to out/request-proof.json (gitignored).
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chalicelib.stages import STAGE_NAMES
from chalicelib.support.config import (
    APP_NAME,
    DEFAULT_BEACON_KEY_ID,
    DEFAULT_KMS_KEY_ID,
    FLEET_TABLE_SUFFIX,
    IDEMPOTENCY_SUFFIX,
    JOBS_SUFFIX,
    LEDGER_SUFFIX,
    TENANT_KEY_TAG,
    TENANTS_SUFFIX,
)
from tests import policy_source
from tests.policy_eval import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    authorize,
    authorize_kms,
    evaluate,
    explain,
    role_session,
)
from tools.bootstrap import FLEET_MAC_KEY_ALIAS
from tools.recorder import capture, principals
from tools.recorder.capture import Request, operator_code
from tools.recorder.model import Access

__all__ = ["PROOF", "operator_code"]

ARTEFACT = Path(__file__).resolve().parent.parent / "out" / "request-proof.json"
PROBE = "probe"  # a principal a test plays on purpose (a leaked or foreign credential): recorded, not judged
# The base stack's logical ids of the tables (by their suffix after the PII table's name) and of
# the keys (by the alias the local stack gives them); a tenant's own key is tagged with its tenant.
TABLES = {
    IDEMPOTENCY_SUFFIX: "IdempotencyTable",
    LEDGER_SUFFIX: "ErasureLedgerTable",
    JOBS_SUFFIX: "JobsTable",
    FLEET_TABLE_SUFFIX: "FleetKeyTable",
    TENANTS_SUFFIX: "TenantsTable",
}
KEYS_BY_ALIAS = {DEFAULT_KMS_KEY_ID: "Key", DEFAULT_BEACON_KEY_ID: "BeaconKey", FLEET_MAC_KEY_ALIAS: "FleetMacKey"}
TENANT_KEY = "TenantKey"
_TABLE_ARN = re.compile(r"^arn:(?P<p>[\w-]+):dynamodb:(?P<r>[\w-]+):(?P<a>\d{12}):table/(?P<name>[^/]+)(?P<rest>/.*)?$")
_KEY_ARN = re.compile(r"^arn:(?P<p>[\w-]+):kms:(?P<r>[\w-]+):(?P<a>\d{12}):key/[\w-]+$")


@dataclass(frozen=True)
class World:
    """This run's names for the template's logical ids: partition, Region, account, the PII
    table a request's table belongs to, and the KMS keys the request names."""

    partition: str
    region: str
    account: str
    base_table: str | None = None
    keys: tuple[tuple[str, str], ...] = ()

    def role(self, stage: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{APP_NAME}-{stage}"

    @property
    def admin(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{APP_NAME}-admin"

    def arn(self, logical: str) -> str:
        if logical.endswith("Role"):
            return self.role(logical.removesuffix("Role").lower())
        for name, arn in self.keys:
            if name == logical:
                return arn
        table = {"PiiTable": "", **{v: k for k, v in TABLES.items()}}.get(logical)
        if table is not None and self.base_table is not None:
            return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{self.base_table}{table}"
        return f"arn:{self.partition}:unbound:{self.region}:{self.account}:{logical}"  # matches nothing real

    def substitute(self, name: str) -> str:
        pseudo = {"AWS::Partition": self.partition, "AWS::Region": self.region, "AWS::AccountId": self.account}
        if name in pseudo:
            return pseudo[name]
        if name.endswith(".Arn"):
            return self.arn(name.removesuffix(".Arn"))
        return {"Environment": "local", "KeyAdminArn": self.admin}.get(name, f"unbound-{name}")


def _resolve(node: Any, world: World) -> Any:
    """The template's intrinsics (Fn::GetAtt .Arn, Ref, Fn::Sub) with this world's values."""
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"}:
            return world.arn(node["Fn::GetAtt"][0])
        if set(node) == {"Ref"}:
            return world.substitute(node["Ref"])
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}!]+)\}", lambda m: world.substitute(m.group(1)), node["Fn::Sub"])
        return {k: _resolve(v, world) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, world) for v in node]
    return node


def render(node: Any) -> str:
    """A template resource as the policy generator names it (``PiiTable.Arn``, ``${PiiTable.Arn}/index/x``)."""
    if isinstance(node, dict) and set(node) == {"Fn::GetAtt"}:
        return f"{node['Fn::GetAtt'][0]}.Arn"
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        return (
            str(node["Fn::Sub"])
            .replace("arn:${AWS::Partition}", "arn:*")
            .replace(":${AWS::Region}:${AWS::AccountId}:", ":*:*:")
        )
    return str(node)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Grant:
    policy: str
    sid: str
    action: str
    resource: str


@dataclass
class Verdict:
    allowed: bool
    message: str = ""
    used: set[Grant] = field(default_factory=set)


def _condition_keys(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for document in documents:
        for statement in _as_list(document["Statement"]):
            for block in statement.get("Condition", {}).values():
                keys |= {k.lower() for k in block}
                keys |= {v.lower() for v in re.findall(r"\$\{([^},]+)", json.dumps(block))}
    return keys


class Governance:
    """The generated policies, per stage: identity policies and the key policies naming its role."""

    def __init__(self, template: Mapping[str, Any] | None = None) -> None:
        template = template if template is not None else policy_source.base_template()
        resources = template["Resources"]
        self.identity: dict[str, list[tuple[str, dict[str, Any]]]] = {
            stage: [
                (name, r["Properties"]["PolicyDocument"])
                for name, r in resources.items()
                if r["Type"] == "AWS::IAM::Policy" and {"Ref": f"{stage.capitalize()}Role"} in r["Properties"]["Roles"]
            ]
            for stage in STAGE_NAMES
        }
        self.key_policies: dict[str, dict[str, Any]] = {
            name: r["Properties"]["KeyPolicy"] for name, r in resources.items() if r["Type"] == "AWS::KMS::Key"
        }
        sample = World("aws", "us-east-1", "000000000000")
        self.relevant = {
            stage: _condition_keys(
                [d for _, d in self.identity[stage]]
                + list(self.key_policies.values())
                + [self._tenant_policy(sample, "t")]
            )
            for stage in STAGE_NAMES
        }
        self._resolved: dict[tuple[str, World], Any] = {}
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}
        self.declared_keys: dict[str, str] = {}  # key ARN -> the logical key a test deploys it as

    def _tenant_policy(self, world: World, customer_id: str) -> dict[str, Any]:
        roles = {stage: world.role(stage) for stage in policy_source.TENANT_KEY_ACTIONS}
        document: dict[str, Any] = policy_source.tenant_key_policy(world.admin, customer_id, roles)
        return document

    def resolved(self, name: str, document: Any, world: World) -> Any:
        if (name, world) not in self._resolved:
            self._resolved[(name, world)] = _resolve(document, world)
        return self._resolved[(name, world)]

    def grants(self, stage: str) -> list[Grant]:
        """Every (Sid, action, resource) the generated policies give ``stage``."""
        found = []
        for name, document in self.identity[stage]:
            for st in _as_list(document["Statement"]):
                for action in _as_list(st["Action"]):
                    found += [Grant(name, st.get("Sid", ""), action, render(r)) for r in _as_list(st["Resource"])]
        role = {"Fn::GetAtt": [f"{stage.capitalize()}Role", "Arn"]}
        for key, document in self.key_policies.items():
            for st in document["Statement"]:
                if role in _as_list(st.get("Principal", {}).get("AWS")):
                    found += [Grant(f"{key} key policy", st["Sid"], a, "the key") for a in _as_list(st["Action"])]
        if stage in policy_source.TENANT_KEY_ACTIONS:
            sample = World("aws", "us-east-1", "000000000000")
            for st in self._tenant_policy(sample, "t")["Statement"]:
                if st["Principal"]["AWS"] == sample.role(stage):
                    found += [
                        Grant("tenant key policy", st["Sid"], a, "the tenant's key") for a in _as_list(st["Action"])
                    ]
        return found

    # -- judging one access ------------------------------------------------------------------

    def world_of(self, access: Access) -> tuple[World, str | None, str]:
        """(world, key policy name or None, canonical resource for caching)."""
        table = _TABLE_ARN.match(access.resource)
        if table:
            name = table["name"]
            base = next((name.removesuffix(s) for s in TABLES if name.endswith(s)), name)
            world = World(table["p"], table["r"], table["a"], base)
            return world, None, access.resource.replace(f"table/{base}", "table/<pii>").split(":", 5)[-1]
        key = _KEY_ARN.match(access.resource)
        if key:
            facts = access.facts.get("key", {})
            logical = self.declared_keys.get(access.resource)
            logical = logical or next((KEYS_BY_ALIAS[a] for a in facts.get("aliases", []) if a in KEYS_BY_ALIAS), None)
            if logical is None and TENANT_KEY_TAG in facts.get("tags", {}):
                logical = TENANT_KEY
            world = World(key["p"], key["r"], key["a"], None, ((logical, access.resource),) if logical else ())
            return world, logical, f"<{logical}>"
        return World("aws", "us-east-1", "000000000000"), None, access.resource

    def judge(self, stage: str, access: Access) -> Verdict:
        world, key_policy_name, canonical = self.world_of(access)
        variants = list(_variants(access, self.relevant[stage]))
        cache = (stage, access.action, canonical, key_policy_name, json.dumps(variants, sort_keys=True))
        if cache not in self._verdicts:
            self._verdicts[cache] = self._judge(stage, access, world, key_policy_name, variants)
        return self._verdicts[cache]

    def _judge(
        self, stage: str, access: Access, world: World, key: str | None, variants: list[dict[str, Any]]
    ) -> Verdict:
        identity = [(name, self.resolved(name, doc, world)) for name, doc in self.identity[stage]]
        caller = role_session(world.role(stage), f"{stage}-local")
        key_policy: tuple[str, Any] | None = None
        if access.action.startswith("kms:") and _KEY_ARN.match(access.resource):
            if key is None:
                facts = access.facts.get("key", {})
                return Verdict(
                    False,
                    "no generated key policy governs this key "
                    f"(aliases {facts.get('aliases')}, tags {facts.get('tags')})",
                )
            if key == TENANT_KEY:
                customer = access.facts["key"]["tags"][TENANT_KEY_TAG]
                key_policy = ("tenant key policy", self._tenant_policy(world, customer))
            else:
                key_policy = (f"{key} key policy", self.resolved(f"{key} key policy", self.key_policies[key], world))
        verdict = Verdict(True)
        for context in variants:
            documents = [d for _, d in identity]
            if key_policy is not None:
                decision = authorize_kms(
                    access.action,
                    access.resource,
                    caller,
                    key_policy=key_policy[1],
                    identity_policies=documents,
                    context=context,
                )
            elif access.resource == "*":
                decisions = [evaluate(d, access.action, "*", {**caller.context, **context}) for d in documents]
                decision = (
                    EXPLICIT_DENY if EXPLICIT_DENY in decisions else (ALLOW if ALLOW in decisions else IMPLICIT_DENY)
                )
            else:
                decision = authorize(
                    access.action, access.resource, caller, identity_policies=documents, context=context
                )
            full = {**caller.context, **context}
            matches = [(name, m) for name, d in identity for m in explain(d, access.action, access.resource, full)]
            if key_policy is not None:
                matches += [
                    (key_policy[0], m) for m in explain(key_policy[1], access.action, access.resource, full, caller.arn)
                ]
            if decision != ALLOW:
                return Verdict(False, _denied(stage, access, context, decision, matches))
            for name, match in matches:
                if match.applies and match.effect == "Allow":
                    verdict.used |= self._used(stage, name, match, identity, key_policy)
        return verdict

    def _used(self, stage: str, name: str, match: Any, identity: list[tuple[str, Any]], key_policy: Any) -> set[Grant]:
        if key_policy is not None and name == key_policy[0]:
            where = "the tenant's key" if name == "tenant key policy" else "the key"
            return {Grant(name, match.sid, pattern, where) for pattern, _ in match.grants}
        template = dict(self.identity[stage])[name]
        statement = _as_list(template["Statement"])[match.index]
        resources = _as_list(statement["Resource"])
        return {Grant(name, match.sid, pattern, render(resources[i])) for pattern, i in match.grants}


def _variants(access: Access, relevant: set[str]) -> Iterator[dict[str, Any]]:
    """Every reading of the access's condition keys that the policies can tell apart."""

    def keep(context: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in context.items() if k.lower() in relevant}

    dimensions = [d for d in access.alternatives if any(k.lower() in relevant for reading in d for k in reading)]
    seen: list[dict[str, Any]] = []
    for combination in itertools.product(*dimensions):
        context = keep(access.context)
        for reading in combination:
            context.update(keep(reading))
        if context not in seen:
            seen.append(context)
            yield context


def _shown(context: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v if isinstance(v, str) else '[' + ', '.join(v) + ']'}" for k, v in sorted(context.items()))


def _denied(
    stage: str, access: Access, context: Mapping[str, Any], decision: str, matches: list[tuple[str, Any]]
) -> str:
    candidates = [(n, m) for n, m in matches if m.action and m.effect == "Allow"]
    candidates.sort(key=lambda nm: (not nm[1].resource, len(nm[1].failed)))
    closest = (
        "; ".join(
            f"{n}/{m.sid} ({'resource matches' if m.resource else 'resource does not match'}"
            + (f", fails {', '.join(m.failed)}" if m.failed else "")
            + ")"
            for n, m in candidates[:2]
        )
        or "no statement grants this action"
    )
    return (
        f"{decision}: stage {stage}, {access.action} on {access.resource}\n"
        f"    condition keys (this reading): {_shown(context) or 'none the policies test'}\n"
        f"    closest: {closest}"
    )


@dataclass
class Proof:
    records: list[Request] = field(default_factory=list)
    registered: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, message)
    used: set[Grant] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    ungoverned: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    judged_upto: int = 0
    _governance: Governance | None = None

    @property
    def governance(self) -> Governance:
        if self._governance is None:
            self._governance = Governance()
        return self._governance

    def register(self, access_key: str, principal: str) -> None:
        """Name the principal behind a key a test made itself (a stage, the operator or ``probe``)."""
        self.registered[access_key] = principal

    def register_key(self, key_arn: str, logical: str) -> None:
        """Declare a KMS key a test created as the base stack's ``logical`` key (e.g. ``Key``: the
        new shared key of a move, whose policy the generator writes like the current one's)."""
        self.governance.declared_keys[key_arn] = logical

    def principal(self, request: Request) -> str | None:
        return principals.principal_of(request.access_key) or self.registered.get(request.access_key)

    def check(self, requests: Iterable[Request]) -> list[str]:
        """Judge ``requests``; returns their problems (also kept for the session summary)."""
        found = []
        for request in requests:
            for problem in self._check(request):
                where = request.test or ("local stack (e2e)" if request.stage_code is None else "outside any test")
                self.problems.append((where, problem))
                found.append(problem)
        return found

    def _check(self, request: Request) -> Iterator[str]:
        principal = self.principal(request)
        what = f"{request.service}:{request.operation}"
        if principal is None:
            self.counts["unattributed"] += 1
            yield (
                f"UNATTRIBUTED: {what} signed by access key {request.access_key!r}, which is no stage's and not "
                "the operator's (build clients with tools.recorder.principals.stage_session, or register the key)"
            )
            return
        if principal == principals.OPERATOR:
            if request.stage_code and not request.declared:
                self.counts["unattributed"] += 1
                yield (
                    f"UNATTRIBUTED: {what} sent by deployed code (chalicelib on the call stack) with the operator's "
                    "credentials: give the stage its own (principals.stage_session) or declare operator_code(reason)"
                )
                return
            self.counts["operator (declared)" if request.declared else "operator"] += 1
            return
        if principal == PROBE:
            self.counts[PROBE] += 1
            return
        self.counts[principal] += 1
        if request.error:
            yield f"UNDERIVABLE: stage {principal}, {what}: {request.error}"
            return
        for access in request.accesses:
            for name, value in access.ungoverned.items():
                self.ungoverned[principal][f"{access.action} {name}={value}"] += 1
            verdict = self.governance.judge(principal, access)
            if verdict.allowed:
                self.used |= verdict.used
            else:
                yield "DENIED " + verdict.message

    def pending(self) -> list[Request]:
        new = self.records[self.judged_upto :]
        self.judged_upto = len(self.records)
        return new

    def unused(self) -> dict[str, list[Grant]]:
        judged = {p for p in self.counts if p in STAGE_NAMES}
        return {
            stage: sorted(
                {g for g in self.governance.grants(stage) if g not in self.used},
                key=lambda g: (g.policy, g.sid, g.action, g.resource),
            )
            for stage in STAGE_NAMES
            if stage in judged
        }

    def load_server_log(self, path: Path) -> list[Request]:
        """The local stack's requests, recorded by its moto server (tools/motoserver.py)."""
        if not path.exists():
            return []
        requests = [
            Request.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line
        ]
        self.records.extend(requests)
        return requests


PROOF = Proof()


def install() -> None:
    """Record every request the in-process moto authorizes (integration tier; the e2e tier's moto
    server records its own, tools/motoserver.py). ``mock_aws`` puts fake credentials into the
    environment while it runs; here they are the operator's, so setup code that names none signs
    as the operator (and a stage's code that names none is caught on the stack)."""
    from moto.core.models import MockAWS

    capture.install(PROOF.records.append, in_process=True)
    operator = principals.environment(principals.OPERATOR)
    original = MockAWS.__init__

    def init(self: MockAWS, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._fake_creds = {k: operator[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    MockAWS.__init__ = init  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def judged_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Judges the requests each test sends (its fixtures' included) when it ends."""
    PROOF.pending()
    capture.current_test[0] = request.node.nodeid
    yield
    capture.current_test[0] = None
    problems = PROOF.check(PROOF.pending())
    if problems:
        pytest.fail("requests the generated policies would not allow on AWS:\n" + "\n".join(problems), pytrace=False)


def sessionfinish(session: pytest.Session) -> None:
    problems = PROOF.check(PROOF.pending())
    if PROOF.counts:
        ARTEFACT.parent.mkdir(exist_ok=True)
        ARTEFACT.write_text(json.dumps(report(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if problems:  # a test's own problems failed that test already; these came from outside any test
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def report() -> dict[str, Any]:
    return {
        "requests": dict(PROOF.counts),
        "problems": [{"where": w, "problem": p} for w, p in PROOF.problems],
        "unused_grants": {s: [g.__dict__ for g in gs] for s, gs in PROOF.unused().items()},
        "ungoverned_parameters": {s: dict(c) for s, c in PROOF.ungoverned.items()},
    }


def terminal_summary(reporter: Any) -> None:
    if not PROOF.counts:
        return
    reporter.section("recorded requests, judged by the generated policies")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(PROOF.counts.items()))
    reporter.write_line(f"requests by principal: {counts}")
    denied = [p for p in PROOF.problems if p[1].startswith("DENIED")]
    reporter.write_line(f"problems: {len(PROOF.problems)} ({len(denied)} denied)")
    for where, problem in PROOF.problems[:20]:
        reporter.write_line(f"  {where}: {problem}")
    for stage, grants in PROOF.unused().items():
        reporter.write_line(f"{stage}: {len(grants)} grant(s) no recorded request used")
        for g in grants:
            reporter.write_line(f"    {g.policy} / {g.sid}: {g.action} on {g.resource}")
    for stage, params in sorted(PROOF.ungoverned.items()):
        shown = ", ".join(f"{k} ({n})" for k, n in sorted(params.items()))
        reporter.write_line(f"{stage} sends parameters no IAM condition governs: {shown}")
    reporter.write_line(f"(also in {ARTEFACT.relative_to(ARTEFACT.parent.parent)})")
