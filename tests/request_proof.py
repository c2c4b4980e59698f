"""The recorded-request proof: every AWS request a stage's code sends, judged by the policies
that will govern it on AWS.

moto enforces no IAM, and ignores what a request's parameters reveal to IAM. So every request
the integration and e2e tiers send is recorded where moto authorizes it (tools/recorder/): its
principal (the access key that signed it: each stage signs with credentials of its own, setup
code with the operator's, tools/recorder/principals.py), and its accesses (action, resource,
every condition key AWS derives from the parameters). Each stage's accesses are judged here by
tests/policy_eval.py against that stage's identity policies and, for KMS, the key's policy,
exactly as the one generator writes them (``infra.iam.stage_policy`` for the ARNs of the
environment the request reached, ``infra.iam.key_policy``, ``tenant_key_policy``): nothing
here states a grant, so a change to the generator or to the requests needs no change here.

The suite fails on:
- a request that is denied under any documented reading of its condition keys (the test that
  sent it fails at teardown; the local stack's at the end of the session), with the stage, the
  action, the resource, the condition keys and the statement that came closest;
- a request no principal can be named for: an access key that is neither a stage's nor the
  operator's nor ``register``-ed, or deployed code (chalicelib) on the call stack of a request
  signed as the operator, unless declared with ``operator_code(reason)``;
- a request the recorder cannot derive (an operation or expression it does not model);
- a request whose ungoverned parameters hand stored data back (``LEAKING``) to a stage that
  may ``kms:Decrypt``: no IAM condition stops it, so the code must not send it.

At the end it prints, per stage, the grants no recorded request used (Sid, action, resource),
and writes them with the counts to out/request-proof.json (gitignored).
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chalicelib.stages import STAGE_NAMES
from chalicelib.support.config import APP_NAME, TENANT_KEY_TAG
from chalicelib.support.environment import Key
from infra import iam
from infra.arns import AccountArns, StackArns
from infra.iam.tenants import TENANT_KEY_ACTIONS
from infra.specs import KEYS, TABLES
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
from tools.recorder import capture, principals
from tools.recorder.capture import Request, operator_code
from tools.recorder.model import Access

__all__ = ["PROOF", "operator_code"]

ARTEFACT = Path(__file__).resolve().parent.parent / "out" / "request-proof.json"
PROBE = "probe"  # a principal a test plays on purpose (a leaked or foreign credential): recorded, not judged
TENANT_KEY = "tenant"  # a tenant's own key: tagged with its tenant, governed by tenant_key_policy
# A table's name is <base><suffix> (infra.specs); the PII table's suffix is "".
_SUFFIXES = sorted((spec.suffix for spec in TABLES.values() if spec.suffix), key=len, reverse=True)
_TABLE_ARN = re.compile(r"^arn:(?P<p>[\w-]+):dynamodb:(?P<r>[\w-]+):(?P<a>\d{12}):table/(?P<name>[^/]+)(?P<rest>/.*)?$")
_KEY_ARN = re.compile(r"^arn:(?P<p>[\w-]+):kms:(?P<r>[\w-]+):(?P<a>\d{12}):key/[\w-]+$")
# Parameters no IAM condition governs that hand stored data back (SECURITY.md "Request parameters
# no IAM condition governs"): with any other value than these, a stage that may kms:Decrypt could
# open what comes back, so the proof refuses it.
LEAKING = {"ReturnValuesOnConditionCheckFailure": ("NONE",)}


def _placeholder_key(world: World, index: int) -> str:
    """A key ARN that names no real key (for the keys an access does not touch)."""
    return f"arn:{world.partition}:kms:{world.region}:{world.account}:key/00000000-0000-0000-0000-{index:012d}"


@dataclass(frozen=True)
class World:
    """Where an access happened: partition, Region, account, the base name of the tables (the
    PII table's) and the keys the access names, by the generator's ``Key`` (or ``TENANT_KEY``)."""

    partition: str
    region: str
    account: str
    base_table: str = "unbound-table"
    keys: tuple[tuple[str, str], ...] = ()

    def role(self, stage: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{APP_NAME}-{stage}"

    @property
    def admin(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{APP_NAME}-admin"

    @property
    def roles(self) -> dict[str, str]:
        return {stage: self.role(stage) for stage in STAGE_NAMES}

    def arns(self) -> AccountArns:
        """The generator's input for this world: every table after the base name, every key
        the access names as itself and the others as keys that match nothing real."""
        named = dict(self.keys)
        keys = {key: named.get(key, _placeholder_key(self, i)) for i, key in enumerate(KEYS)}
        prefix = f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{self.base_table}"
        return AccountArns(keys, {table: prefix + spec.suffix for table, spec in TABLES.items()})


SAMPLE = World("aws", "us-east-1", "000000000000", APP_NAME)


def render(node: Any) -> str:
    """A base-template resource as the generator names it (``PiiTable.Arn``, ``${PiiTable.Arn}/index/x``)."""
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


@dataclass(frozen=True)
class Generator:
    """The policy generator the proof judges by (``infra.iam``; a test may hand it a wrong one)."""

    stage_policy: Callable[[str, Any], Any] = iam.stage_policy
    key_policy: Callable[[Key, Any, Mapping[str, Any]], Any] = iam.key_policy
    tenant_key_policy: Callable[[Any, str, Mapping[str, Any]], Any] = iam.tenant_key_policy
    tracing_policy: Callable[[], Any] = iam.tracing_policy

    def identity(self, stage: str, arns: Any) -> list[tuple[str, Any]]:
        """A stage role's identity policies, as infra.roles attaches them."""
        title = stage.capitalize()
        return [(f"{title}Policy", self.stage_policy(stage, arns)), (f"{title}TracingPolicy", self.tracing_policy())]

    def key_document(self, key: str, world: World, customer: str = "") -> Any:
        if key == TENANT_KEY:
            roles = {s: a for s, a in world.roles.items() if s in TENANT_KEY_ACTIONS}
            return self.tenant_key_policy(world.admin, customer, roles)
        return self.key_policy(Key(key), world.admin, world.roles)


class Governance:
    """The generated policies, per stage: its identity policies and the key policies naming its
    role, generated by ``infra.iam`` for the ARNs of the world each access happened in."""

    def __init__(self, generator: Generator | None = None) -> None:
        self.generator = generator or Generator()
        self.relevant = {
            stage: _condition_keys(
                [d for _, d in self.generator.identity(stage, SAMPLE.arns())]
                + [self.generator.key_document(key, SAMPLE) for key in KEYS]
                + [self.generator.key_document(TENANT_KEY, SAMPLE, "t")]
            )
            for stage in STAGE_NAMES
        }
        self._documents: dict[tuple[Any, ...], Any] = {}
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}
        self.declared_keys: dict[str, str] = {}  # key ARN -> the generator's Key a test deploys it as

    def identity(self, stage: str, world: World) -> list[tuple[str, Any]]:
        if ("identity", stage, world) not in self._documents:
            self._documents[("identity", stage, world)] = self.generator.identity(stage, world.arns())
        documents: list[tuple[str, Any]] = self._documents[("identity", stage, world)]
        return documents

    def key_document(self, key: str, world: World, customer: str = "") -> Any:
        if ("key", key, world, customer) not in self._documents:
            self._documents[("key", key, world, customer)] = self.generator.key_document(key, world, customer)
        return self._documents[("key", key, world, customer)]

    def stack_identity(self, stage: str) -> list[tuple[str, Any]]:
        """The stage's identity policies as the base stack declares them (for naming grants)."""
        if ("stack", stage) not in self._documents:
            self._documents[("stack", stage)] = self.generator.identity(stage, StackArns())
        documents: list[tuple[str, Any]] = self._documents[("stack", stage)]
        return documents

    def grants(self, stage: str) -> list[Grant]:
        """Every (Sid, action, resource) the generated policies give ``stage``, resources as the
        base stack names them."""
        found = []
        for name, document in self.stack_identity(stage):
            for st in _as_list(document["Statement"]):
                for action in _as_list(st["Action"]):
                    found += [Grant(name, st.get("Sid", ""), action, render(r)) for r in _as_list(st["Resource"])]
        role = SAMPLE.role(stage)
        for key in (*KEYS, TENANT_KEY):
            for st in self.key_document(key, SAMPLE, "t")["Statement"]:
                if role in _as_list(st.get("Principal", {}).get("AWS")):
                    found += [
                        Grant(_key_policy_name(key), st["Sid"], a, _key_name(key)) for a in _as_list(st["Action"])
                    ]
        return found

    def may_decrypt(self, stage: str) -> bool:
        """Whether any generated policy gives ``stage`` kms:Decrypt (on any key)."""
        return any(g.action in ("kms:Decrypt", "kms:*") for g in self.grants(stage))

    # -- judging one access ------------------------------------------------------------------

    def world_of(self, access: Access) -> tuple[World, str | None, str]:
        """(world, the key whose policy governs or None, canonical resource for caching)."""
        table = _TABLE_ARN.match(access.resource)
        if table:
            name = table["name"]
            base = next((name.removesuffix(s) for s in _SUFFIXES if name.endswith(s)), name)
            world = World(table["p"], table["r"], table["a"], base)
            return world, None, access.resource.replace(f"table/{base}", "table/<pii>").split(":", 5)[-1]
        key = _KEY_ARN.match(access.resource)
        if key:
            facts = access.facts.get("key", {})
            aliases = {spec.alias(APP_NAME): str(k) for k, spec in KEYS.items()}
            logical = self.declared_keys.get(access.resource)
            logical = logical or next((aliases[a] for a in facts.get("aliases", []) if a in aliases), None)
            if logical is None and TENANT_KEY_TAG in facts.get("tags", {}):
                logical = TENANT_KEY
            named = ((logical, access.resource),) if logical and logical != TENANT_KEY else ()
            world = World(key["p"], key["r"], key["a"], keys=named)
            return world, logical, f"<{logical}>"
        return SAMPLE, None, access.resource

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
        identity = self.identity(stage, world)
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
            customer = access.facts["key"]["tags"][TENANT_KEY_TAG] if key == TENANT_KEY else ""
            key_policy = (_key_policy_name(key), self.key_document(key, world, customer))
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
            where = _key_name(TENANT_KEY if name == _key_policy_name(TENANT_KEY) else "")
            return {Grant(name, match.sid, pattern, where) for pattern, _ in match.grants}
        template = dict(self.stack_identity(stage))[name]
        statement = _as_list(template["Statement"])[match.index]
        resources = _as_list(statement["Resource"])
        return {Grant(name, match.sid, pattern, render(resources[i])) for pattern, i in match.grants}


def _key_policy_name(key: str) -> str:
    return f"{key} key policy"


def _key_name(key: str) -> str:
    return "the tenant's key" if key == TENANT_KEY else "the key"


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

    def register_key(self, key_arn: str, key: Key) -> None:
        """Declare a KMS key a test created as the stack's ``key`` (e.g. ``Key.DATA``: the new
        shared key of a move, whose policy the generator writes like the current one's; or a
        key whose alias carries an environment name)."""
        self.governance.declared_keys[key_arn] = str(key)

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
                if name in LEAKING and str(value) not in LEAKING[name] and self.governance.may_decrypt(principal):
                    yield (
                        f"LEAK: stage {principal}, {access.action} on {access.resource} sends {name}={value}: no IAM "
                        "condition governs it, it hands the stored item back, and this stage may kms:Decrypt "
                        "(SECURITY.md, request parameters no IAM condition governs)"
                    )
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

    MockAWS.__init__ = init  # type: ignore[method-assign]  # every mock signs as the operator


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


_WORKER_KEY = "request_proof"


def sessionfinish(session: pytest.Session) -> None:
    problems = PROOF.check(PROOF.pending())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # A pytest-xdist worker: the controller writes the session's report from every worker's.
        workeroutput[_WORKER_KEY] = report()
        if problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if _WORKERS:
        _write(_joined(_WORKERS))
    elif PROOF.counts:
        _write(report())
    if problems:  # a test's own problems failed that test already; these came from outside any test
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_WORKERS: list[dict[str, Any]] = []  # the controller's copy of each worker's report (pytest -n)


def testnodedown(node: Any) -> None:
    seen = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if seen:
        _WORKERS.append(seen)


def _joined(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' reports as one session's: counts added; a grant is unused when no worker
    that judged its stage used it."""
    requests: Counter[str] = Counter()
    ungoverned: dict[str, Counter[str]] = defaultdict(Counter)
    unused: dict[str, list[dict[str, str]]] = {}
    problems: list[dict[str, str]] = []
    for part in reports:
        requests.update(part["requests"])
        problems.extend(part["problems"])
        for stage, params in part["ungoverned_parameters"].items():
            ungoverned[stage].update(params)
        for stage, grants in part["unused_grants"].items():
            if stage in unused:
                kept = {json.dumps(g, sort_keys=True) for g in grants}
                unused[stage] = [g for g in unused[stage] if json.dumps(g, sort_keys=True) in kept]
            else:
                unused[stage] = grants
    return {
        "requests": dict(requests),
        "problems": problems,
        "unused_grants": unused,
        "ungoverned_parameters": {s: dict(c) for s, c in ungoverned.items()},
    }


def _write(joined: dict[str, Any]) -> None:
    global _REPORT
    _REPORT = joined
    if joined["requests"]:
        ARTEFACT.parent.mkdir(exist_ok=True)
        ARTEFACT.write_text(json.dumps(joined, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_REPORT: dict[str, Any] = {}  # what the session's terminal summary shows (written at session end)


def report() -> dict[str, Any]:
    return {
        "requests": dict(PROOF.counts),
        "problems": [{"where": w, "problem": p} for w, p in PROOF.problems],
        "unused_grants": {s: [g.__dict__ for g in gs] for s, gs in PROOF.unused().items()},
        "ungoverned_parameters": {s: dict(c) for s, c in PROOF.ungoverned.items()},
    }


def terminal_summary(reporter: Any) -> None:
    joined = _REPORT
    if not joined.get("requests"):
        return
    reporter.section("recorded requests, judged by the generated policies")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(joined["requests"].items()))
    reporter.write_line(f"requests by principal: {counts}")
    problems = joined["problems"]
    denied = [p for p in problems if p["problem"].startswith("DENIED")]
    reporter.write_line(f"problems: {len(problems)} ({len(denied)} denied)")
    for p in problems[:20]:
        reporter.write_line(f"  {p['where']}: {p['problem']}")
    for stage, grants in joined["unused_grants"].items():
        reporter.write_line(f"{stage}: {len(grants)} grant(s) no recorded request used")
        by_statement: dict[tuple[str, str], tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
        for g in grants:
            actions, resources = by_statement[(g["policy"], g["sid"])]
            actions.add(g["action"])
            resources.add(g["resource"])
        for (policy, sid), (actions, resources) in sorted(by_statement.items()):
            reporter.write_line(f"    {policy} / {sid}: {', '.join(sorted(actions))} on {', '.join(sorted(resources))}")
    for stage, params in sorted(joined["ungoverned_parameters"].items()):
        shown = ", ".join(f"{k} ({n})" for k, n in sorted(params.items()))
        reporter.write_line(f"{stage} sends parameters no IAM condition governs: {shown}")
    reporter.write_line(f"(also in {ARTEFACT.relative_to(ARTEFACT.parent.parent)})")
