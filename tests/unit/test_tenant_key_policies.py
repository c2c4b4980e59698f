"""Per-tenant keys and the rewrap role, proven with the policy evaluator (moto enforces neither).

The denials the key lifecycle promises: a stage uses tenant A's key only under A's context
(key policy and tag-scoped identity policy), never an untagged key, never A's key for B's
data; the rewrap role re-encrypts and nothing else. The masked view on tenant keys: the
masked stage decrypts only masked-view data keys (context ``"view": "masked"``) of the key's
own tenant, the reader and indexer only full-view ones, the writer encrypts both, the rewrap
role moves both.
"""

from __future__ import annotations

import pytest

from chalicelib.envelope.format import KIND_MASKED_TENANT, KIND_TENANT, encryption_context
from chalicelib.stages import STAGES
from chalicelib.store import layout
from chalicelib.support.config import TENANT_KEY_TAG
from chalicelib.support.environment import Key
from infra.iam import key_policy, rewrap_policy, stage_policy, tenant_key_policy
from infra.iam.statements import Document
from infra.iam.tenants import TENANT_KEY_ACTIONS, TENANT_KEY_VIEWS
from tests.arns import account_arns
from tests.policy_eval import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    authorize_kms,
    evaluate,
    kms_context,
    resource_tags,
    role_session,
)

ACCOUNT = "111122223333"
CUSTOMER_ACCOUNT = "444455556666"
TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/pii-vault"
SHARED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/11111111-1111-1111-1111-111111111111"
KEY_A = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
KEY_B = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"
UNTAGGED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/cccccccc-cccc-cccc-cccc-cccccccccccc"
CUSTOMER_KEY = f"arn:aws:kms:eu-west-1:{CUSTOMER_ACCOUNT}:key/dddddddd-dddd-dddd-dddd-dddddddddddd"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/key-admin"
# The roles the tenant key policy names (infra's: each with its own actions).
ROLES = {stage: f"arn:aws:iam::{ACCOUNT}:role/pii-vault-{stage}" for stage in TENANT_KEY_ACTIONS}
# The stages that reach tenants' keys through the registry table (rewrap is given each key by its event).
ROUTING = [s.name for s in STAGES if s.tenant_keys]
KMS_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
    "kms:ScheduleKeyDeletion",
)


def ctx(customer: str, tag: str | None, view: str = "full") -> dict[str, object]:
    """The context the code builds for ``customer``'s tenant-scoped data key of ``view``."""
    kind = KIND_MASKED_TENANT if view == "masked" else KIND_TENANT
    keys = kms_context(encryption_context("pii-vault", customer, kind))
    return {**keys, **(resource_tags({TENANT_KEY_TAG: tag}) if tag else {})}


ARNS = account_arns(
    SHARED, TABLE, beacon_key_arn=UNTAGGED.replace("cccc", "eeee"), customer_accounts=(CUSTOMER_ACCOUNT,)
)


def identity(stage: str) -> dict[str, object]:
    """The stage's whole identity policy: its own grants and its tag-scoped tenant-key statements."""
    return stage_policy(stage, ARNS)


def key_a_policy() -> Document:
    return tenant_key_policy(ADMIN, "A", ROLES)


def on_key_a(stage: str, action: str, customer: str, view: str = "full") -> str:
    """AWS's decision on ``stage``'s role doing ``action`` on tenant A's key for ``customer``'s data."""
    return authorize_kms(
        action,
        KEY_A,
        role_session(ROLES[stage]),
        key_policy=key_a_policy(),
        identity_policies=[identity(stage)],
        context=ctx(customer, "A", view),
    )


@pytest.mark.parametrize(("stage", "action"), [("writer", "kms:Encrypt"), ("reader", "kms:Decrypt")])
def test_given_tenant_a_key_then_a_stage_uses_it_only_under_a_context(stage: str, action: str) -> None:
    caller = role_session(ROLES[stage])
    assert on_key_a(stage, action, "A") == ALLOW
    assert on_key_a(stage, action, "B") == IMPLICIT_DENY  # A's key for B's data
    # Both layers refuse on their own: the key policy and the tag-scoped identity policy.
    assert evaluate(key_a_policy(), action, KEY_A, {**caller.context, **ctx("B", "A")}, principal=caller.arn) != ALLOW
    assert evaluate(identity(stage), action, KEY_A, ctx("B", "A")) == IMPLICIT_DENY
    assert evaluate(identity(stage), action, KEY_A, ctx("A", "A")) == ALLOW


@pytest.mark.parametrize("stage", ROUTING)
def test_given_an_untagged_or_other_tenant_key_then_the_identity_policy_denies_every_kms_action(stage: str) -> None:
    policy = identity(stage)
    for action in KMS_ACTIONS:
        for view in ("full", "masked"):
            assert evaluate(policy, action, UNTAGGED, ctx("A", None, view)) == IMPLICIT_DENY, action
            assert evaluate(policy, action, KEY_B, ctx("A", "B", view)) == IMPLICIT_DENY, action


@pytest.mark.parametrize("stage", list(TENANT_KEY_ACTIONS))
def test_given_the_tenant_key_policy_then_each_role_has_only_its_actions_and_only_for_a(stage: str) -> None:
    caller = role_session(ROLES[stage])
    for view in ("full", "masked"):
        allowed = {
            a
            for a in KMS_ACTIONS
            if evaluate(key_a_policy(), a, KEY_A, {**caller.context, **ctx("A", "A", view)}, principal=caller.arn)
            == ALLOW
        }
        assert allowed == (set(TENANT_KEY_ACTIONS[stage]) if view in TENANT_KEY_VIEWS[stage] else set())
    for action in KMS_ACTIONS:
        for view in ("full", "masked"):
            other = {**caller.context, **ctx("B", "A", view)}
            assert evaluate(key_a_policy(), action, KEY_A, other, principal=caller.arn) == IMPLICIT_DENY
        for scope in ({"scope": "pool"}, {"scope": "pool", "view": "masked"}):
            pool = {**caller.context, **kms_context({"app": "pii-vault", **scope})}
            assert evaluate(key_a_policy(), action, KEY_A, pool, principal=caller.arn) == IMPLICIT_DENY


# The views each stage may use on a tenant key: (stage, action, view) -> allowed.
VIEW_USE = [
    ("writer", "kms:Encrypt", "full", True),
    ("writer", "kms:Encrypt", "masked", True),
    ("reader", "kms:Decrypt", "full", True),
    ("reader", "kms:Decrypt", "masked", False),
    ("indexer", "kms:Decrypt", "full", True),
    ("indexer", "kms:Decrypt", "masked", False),
    ("masked", "kms:Decrypt", "full", False),
    ("masked", "kms:Decrypt", "masked", True),
]


@pytest.mark.parametrize(("stage", "action", "view", "expected"), VIEW_USE)
def test_given_a_view_then_key_policy_and_identity_policy_each_decide_it_for_tenant_a_only(
    stage: str, action: str, view: str, expected: bool
) -> None:
    caller = role_session(ROLES[stage])
    assert on_key_a(stage, action, "A", view) == (ALLOW if expected else IMPLICIT_DENY)
    assert on_key_a(stage, action, "B", view) == IMPLICIT_DENY  # B's data (either view) under A's key
    # Each layer refuses on its own what the stage may not do.
    for customer in ("A", "B"):
        wanted = ALLOW if expected and customer == "A" else IMPLICIT_DENY
        on_key = evaluate(
            key_a_policy(), action, KEY_A, {**caller.context, **ctx(customer, "A", view)}, principal=caller.arn
        )
        assert on_key == wanted, ("key policy", customer)
        assert evaluate(identity(stage), action, KEY_A, ctx(customer, "A", view)) == wanted, ("identity", customer)


def test_given_the_masked_role_then_no_full_view_tenant_key_and_no_other_tenant_masked_key_opens() -> None:
    masked = role_session(ROLES["masked"])
    key_b_policy = tenant_key_policy(ADMIN, "B", ROLES)

    def decrypt(key: str, policy: dict[str, object], customer: str, tag: str, view: str) -> str:
        return authorize_kms(
            "kms:Decrypt",
            key,
            masked,
            key_policy=policy,
            identity_policies=[identity("masked")],
            context=ctx(customer, tag, view),
        )

    assert decrypt(KEY_A, key_a_policy(), "A", "A", "masked") == ALLOW
    assert decrypt(KEY_A, key_a_policy(), "A", "A", "full") == IMPLICIT_DENY  # a full-view tenant-A key
    assert decrypt(KEY_A, key_a_policy(), "B", "A", "masked") == IMPLICIT_DENY  # B's masked key under A's key
    assert decrypt(KEY_B, key_b_policy, "A", "B", "masked") == IMPLICIT_DENY  # A's masked key under B's key
    assert decrypt(KEY_B, key_b_policy, "B", "B", "full") == IMPLICIT_DENY
    # Nothing else on a tenant key: no Encrypt, ReEncrypt, GenerateDataKey or grant, either view.
    for action in KMS_ACTIONS:
        if action == "kms:Decrypt":
            continue
        for view in ("full", "masked"):
            assert evaluate(identity("masked"), action, KEY_A, ctx("A", "A", view)) == IMPLICIT_DENY, action


def test_given_the_reader_then_a_masked_view_tenant_key_does_not_open() -> None:
    for stage in ("reader", "indexer"):
        caller = role_session(ROLES[stage])
        masked_a = ctx("A", "A", "masked")
        assert (
            authorize_kms(
                "kms:Decrypt",
                KEY_A,
                caller,
                key_policy=key_a_policy(),
                identity_policies=[identity(stage)],
                context=masked_a,
            )
            == IMPLICIT_DENY
        ), stage
        # A view other than "masked", or the masked view with an extra key, does not open either.
        for extra in ({"view": "full"}, {"view": "masked", "x": "y"}):
            odd = {
                **kms_context({"app": "pii-vault", "customer_id": "A", **extra}),
                **resource_tags({TENANT_KEY_TAG: "A"}),
            }
            assert evaluate(identity(stage), "kms:Decrypt", KEY_A, odd) == IMPLICIT_DENY, (stage, extra)


def test_given_the_tenant_key_policy_then_no_statement_names_everyone_or_the_account_root() -> None:
    for statement in key_a_policy()["Statement"]:
        principals = statement["Principal"]["AWS"]
        assert principals != "*" and ":root" not in str(principals)


def test_given_a_customer_owned_key_in_another_account_then_both_policies_must_allow() -> None:
    writer = role_session(ROLES["writer"])
    customer_policy = tenant_key_policy(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/admin", "A", ROLES)
    assert (
        authorize_kms(
            "kms:Encrypt",
            CUSTOMER_KEY,
            writer,
            key_policy=customer_policy,
            identity_policies=[identity("writer")],
            context=ctx("A", "A"),
        )
        == ALLOW
    )
    # Without the tag on the customer's key our identity policy does not reach it: denied.
    assert (
        authorize_kms(
            "kms:Encrypt",
            CUSTOMER_KEY,
            writer,
            key_policy=customer_policy,
            identity_policies=[identity("writer")],
            context=ctx("A", None),
        )
        == IMPLICIT_DENY
    )
    # An account not listed as a customer account is not reached either.
    other = CUSTOMER_KEY.replace(CUSTOMER_ACCOUNT, "777788889999")
    assert evaluate(identity("writer"), "kms:Encrypt", other, ctx("A", "A")) == IMPLICIT_DENY


def rewrap() -> dict[str, object]:
    return rewrap_policy(ARNS, KEY_A)


def test_given_the_rewrap_policy_then_it_reencrypts_from_the_source_to_the_target_and_nothing_else() -> None:
    pool = kms_context({"app": "pii-vault", "scope": "pool"})
    masked_pool = kms_context({"app": "pii-vault", "scope": "pool", "view": "masked"})
    for context in (ctx("A", None), pool, ctx("A", None, "masked"), masked_pool):
        allowed_on_source = {a for a in KMS_ACTIONS if evaluate(rewrap(), a, SHARED, context) == ALLOW}
        allowed_on_target = {a for a in KMS_ACTIONS if evaluate(rewrap(), a, KEY_A, context) == ALLOW}
        assert allowed_on_source == {"kms:ReEncryptFrom"}
        assert allowed_on_target == {"kms:ReEncryptTo"}
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"):
        for key in (SHARED, KEY_A, KEY_B, UNTAGGED):
            assert evaluate(rewrap(), action, key, ctx("A", "A")) == IMPLICIT_DENY, (action, key)
    assert evaluate(rewrap(), "kms:ReEncryptFrom", UNTAGGED, ctx("A", None)) == IMPLICIT_DENY
    assert evaluate(rewrap(), "kms:ReEncryptTo", KEY_B, ctx("A", "B")) == IMPLICIT_DENY  # A's data to B's key
    assert evaluate(rewrap(), "kms:ReEncryptTo", KEY_B, ctx("A", "B", "masked")) == IMPLICIT_DENY
    # Tenant keys: both views of the key's own tenant, in the identity policy and the key policy.
    caller = role_session(ROLES["rewrap"])
    tenant_only = stage_policy("rewrap", ARNS)
    for view in ("full", "masked"):
        for action in ("kms:ReEncryptFrom", "kms:ReEncryptTo"):
            assert (
                authorize_kms(
                    action,
                    KEY_A,
                    caller,
                    key_policy=key_a_policy(),
                    identity_policies=[tenant_only],
                    context=ctx("A", "A", view),
                )
                == ALLOW
            ), (action, view)
            assert evaluate(tenant_only, action, KEY_A, ctx("B", "A", view)) == IMPLICIT_DENY, (action, view)


def test_given_the_shared_key_policy_then_the_rewrap_role_moves_both_views_and_nothing_else() -> None:
    rewrap_role = ROLES["rewrap"]
    caller = role_session(rewrap_role)
    document = key_policy(Key.DATA, ADMIN, {"rewrap": rewrap_role})
    contexts = {
        "tenant": ctx("A", None),
        "pool": kms_context({"app": "pii-vault", "scope": "pool"}),
        "masked tenant": ctx("A", None, "masked"),
        "masked pool": kms_context({"app": "pii-vault", "scope": "pool", "view": "masked"}),
    }
    for name, context in contexts.items():
        allowed = {
            a
            for a in KMS_ACTIONS
            if evaluate(document, a, SHARED, {**caller.context, **context}, principal=caller.arn) == ALLOW
        }
        assert allowed == {"kms:ReEncryptFrom", "kms:ReEncryptTo"}, name
    odd = kms_context({"app": "pii-vault", "customer_id": "A", "view": "full"})
    assert (
        evaluate(document, "kms:ReEncryptFrom", SHARED, {**caller.context, **odd}, principal=caller.arn)
        == IMPLICIT_DENY
    )


def test_given_the_rewrap_policy_then_it_updates_only_slots_and_the_key_id_without_reading_back() -> None:
    good = {"dynamodb:Attributes": ["kms_key", "pk", "sk", "slots"], "dynamodb:ReturnValues": "NONE"}
    assert evaluate(rewrap(), "dynamodb:UpdateItem", TABLE, good) == ALLOW
    masked_slots = {**good, "dynamodb:Attributes": ["kms_key", "mk_0", "mk_email", "pk", "sk", "slots"]}
    assert evaluate(rewrap(), "dynamodb:UpdateItem", TABLE, masked_slots) == ALLOW
    field = {"dynamodb:Attributes": ["pk", "sk", "slots", "f_email"]}
    assert evaluate(rewrap(), "dynamodb:UpdateItem", TABLE, field) == IMPLICIT_DENY
    projection = {"dynamodb:Attributes": ["pk", "sk", "mk_0", "m_email"]}  # a masked ciphertext: never
    assert evaluate(rewrap(), "dynamodb:UpdateItem", TABLE, projection) == IMPLICIT_DENY
    old = {**good, "dynamodb:ReturnValues": "ALL_OLD"}
    assert evaluate(rewrap(), "dynamodb:UpdateItem", TABLE, old) == IMPLICIT_DENY
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
        assert evaluate(rewrap(), action, TABLE, good) == IMPLICIT_DENY


def test_given_authorize_kms_then_a_key_policy_deny_wins_and_same_account_needs_only_the_key_policy() -> None:
    caller = role_session(ROLES["writer"])
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ROLES["writer"]}, "Action": "kms:Encrypt", "Resource": "*"}
        ],
    }
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}
    assert authorize_kms("kms:Encrypt", KEY_A, caller, key_policy=grant) == ALLOW
    assert authorize_kms("kms:Encrypt", KEY_A, caller, key_policy=grant, identity_policies=[deny]) == EXPLICIT_DENY
    assert authorize_kms("kms:Decrypt", KEY_A, caller, key_policy=grant) == IMPLICIT_DENY
    assert authorize_kms("kms:Encrypt", CUSTOMER_KEY, caller, key_policy=grant) == IMPLICIT_DENY  # cross-account
    assert resource_tags({"t": "v"}) == {"aws:ResourceTag/t": "v"}


def test_given_a_reencrypt_then_each_half_is_judged_alone_so_a_move_across_view_or_tenant_is_bounded_not_refused() -> (
    None
):
    """Issue 21 E. KMS authorizes one ReEncrypt twice: ``kms:ReEncryptFrom`` on the source key
    under the *source* context and ``kms:ReEncryptTo`` on the destination key under the
    *destination* context; no condition key compares the two (AWS's service authorization
    reference lists, for each action, only its own side's keys: ``kms:EncryptionContextKeys``,
    ``kms:EncryptionAlgorithm``, ``kms:ReEncryptOnSameKey``...). So IAM cannot stop the rewrap
    role from moving a data key of tenant A's full view to tenant B's, or to a masked-view
    context, on a shared target key. What bounds it (SECURITY.md, "Rewrap"):

    - on a tenant's own key the destination is that tenant's context only (the key's tag);
    - the rewrap role never holds a plaintext (no Decrypt, Encrypt or GenerateDataKey);
    - a moved key opens nothing it is moved to: every field's AAD binds tenant, record and
      field, and v3 key references commit to the key (the tamper suite);
    - a full-view key moved to the masked context reaches plaintext only with a second leaked
      credential, the masked stage's, and that stage cannot read a full-view ciphertext.
    """
    # Each half alone: A's full view out of the shared key, B's masked view onto the target.
    assert evaluate(rewrap(), "kms:ReEncryptFrom", SHARED, ctx("A", None)) == ALLOW
    assert evaluate(rewrap(), "kms:ReEncryptTo", KEY_A, ctx("B", None, "masked")) == ALLOW
    # On a tenant's own key (the base stack's rewrap role), the destination is the key's tenant only.
    tenant_only = stage_policy("rewrap", ARNS)
    for view in ("full", "masked"):
        assert evaluate(tenant_only, "kms:ReEncryptTo", KEY_A, ctx("B", "A", view)) == IMPLICIT_DENY
        assert evaluate(tenant_only, "kms:ReEncryptTo", KEY_A, ctx("A", "A", view)) == ALLOW
    # Never a plaintext, on any key, under any context.
    plaintext = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext")
    for policy in (rewrap(), tenant_only):
        for key in (SHARED, KEY_A, KEY_B):
            for context in (
                ctx("A", None),
                ctx("A", "A", "masked"),
                kms_context({"app": "pii-vault", "scope": "pool"}),
            ):
                assert not {a for a in plaintext if evaluate(policy, a, key, context) == ALLOW}
    # The masked stage reads no full-view ciphertext or key reference of either item generation.
    masked = stage_policy("masked", ARNS)
    full_view = [*layout.V3_FIELD_ATTRIBUTES, *layout.V3_KEY_ATTRIBUTES, *layout.LEGACY_FIELD_ATTRIBUTES, layout.SLOTS]
    projected = list(layout.MASKED_VIEW_ATTRIBUTES)
    for attribute in full_view:
        context = {"dynamodb:Attributes": [*projected, attribute], "dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
        assert evaluate(masked, "dynamodb:GetItem", TABLE, context=context) == IMPLICIT_DENY, attribute
    assert (
        evaluate(
            masked,
            "dynamodb:GetItem",
            TABLE,
            context={"dynamodb:Attributes": projected, "dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        )
        == ALLOW
    )
