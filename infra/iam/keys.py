"""The KMS key policies: administration for the admin (no cryptographic use), and for each
stage role exactly its use of that key. No statement for ``*`` or the account root, so IAM
policies alone never grant use of a key: these statements are the only way.

What each role may do with each key is stated here, per key, in statement order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chalicelib.support.environment import Key
from infra.arns import InvalidResourceError
from infra.cfn import Json
from infra.iam.statements import (
    Document,
    Statement,
    admin_statement,
    both_views,
    document,
    full_view_only,
    kms_statements,
    mac_statement,
    masked_kms_statements,
    principal,
)

Grant = Callable[[], list[Statement]]

# The shared data key: the writer encrypts both views; the reader and the indexer (it decrypts
# emails to compute beacons) decrypt the full view only; the masked stage decrypts masked-view
# data keys only; the rewrap job moves data keys from it and onto it (ReEncrypt, both views).
# Offboarding has no KMS permission at all.
_DATA_KEY: Mapping[str, Grant] = {
    "writer": lambda: [
        *kms_statements("WriterRoleEncryptsDataKeys", "kms:Encrypt", "*"),
        *masked_kms_statements("WriterRoleEncryptsDataKeys", "kms:Encrypt", "*"),
    ],
    "reader": lambda: full_view_only(kms_statements("ReaderRoleDecryptsDataKeys", "kms:Decrypt", "*")),
    "indexer": lambda: full_view_only(kms_statements("IndexerRoleDecryptsDataKeys", "kms:Decrypt", "*")),
    "masked": lambda: masked_kms_statements("MaskedRoleDecryptsMaskedViewDataKeys", "kms:Decrypt", "*"),
    "rewrap": lambda: [
        *both_views("RewrapRoleReEncryptFrom", "kms:ReEncryptFrom", "*"),
        *both_views("RewrapRoleReEncryptTo", "kms:ReEncryptTo", "*"),
    ],
}
# The reader fleet's HMAC key: the reader alone derives its key-table sealing keys.
_FLEET_MAC_KEY: Mapping[str, Grant] = {
    "reader": lambda: [mac_statement("ReaderRoleDerivesFleetSealingKeys", "*")],
}
# The beacon HMAC key: the reader (search) and the indexer compute beacons, in one statement.
BEACON_MAC_STAGES = ("reader", "indexer")
_KEY_USERS: Mapping[Key, Mapping[str, Grant]] = {
    Key.DATA: _DATA_KEY,
    Key.FLEET_MAC: _FLEET_MAC_KEY,
    Key.BEACON_MAC: {name: lambda: [] for name in BEACON_MAC_STAGES},
}


def key_users(key: Key) -> tuple[str, ...]:
    """The stages whose roles the key's policy names, in statement order."""
    return tuple(_KEY_USERS[key])


def key_policy(key: Key, admin: Json, roles: Mapping[str, Json] | None = None) -> Document:
    """The policy of ``key``: the admin's statement, then each stage role of ``roles`` (stage ->
    role ARN, or the template's intrinsic) that uses the key, with its statements. Roles of
    stages that do not use the key are ignored; without roles the policy is admin-only (what
    the local bootstrap installs). Every principal named must be a distinct role or user."""
    roles = roles or {}
    users = {name: principal(roles[name], f"{name}_role_arn") for name in _KEY_USERS[key] if name in roles}
    named = [admin, *users.values()]
    for index, value in enumerate(named):
        if value in named[:index]:
            who = ["the admin", *(f"the {name} role" for name in users)]
            raise InvalidResourceError(f"{who[index]} must differ from {who[named.index(value)]}")
    statements = [admin_statement(admin)]
    if key is Key.BEACON_MAC:
        if users:
            statement = mac_statement("RolesGenerateBeaconRootMac", "*")
            statement["Principal"] = {"AWS": list(users.values())}
            statements.append(statement)
        return document(*statements)
    for name, arn in users.items():
        for statement in _KEY_USERS[key][name]():
            statement["Principal"] = {"AWS": arn}
            statements.append(statement)
    return document(*statements)
