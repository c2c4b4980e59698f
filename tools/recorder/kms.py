"""KMS requests as IAM and key policies authorize them.

Sources, cited by tag in the rules below:

[KCK]  AWS KMS condition keys, KMS Developer Guide,
       https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
[GCK]  AWS global condition keys (aws:ResourceTag/*), IAM User Guide,
       https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
[RE]   ReEncrypt, KMS API Reference ("Required permissions: kms:ReEncryptFrom permission on the
       source KMS key, kms:ReEncryptTo permission on the destination KMS key"),
       https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html
[KAR]  AWS KMS permissions reference (which operations are KMS key resource operations),
       https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html
[ALIAS] Using aliases in IAM and key policies: a cryptographic operation is authorized on the
       KMS key the alias names, never on the alias,
       https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.recorder.model import Access, Context, Underivable, alternative


@dataclass(frozen=True)
class KeyFacts:
    arn: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    key_spec: str = "SYMMETRIC_DEFAULT"
    key_usage: str = "ENCRYPT_DECRYPT"
    origin: str = "AWS_KMS"
    multi_region: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"arn": self.arn, "aliases": list(self.aliases), "tags": dict(self.tags)}


Keys = Callable[[str], KeyFacts | None]  # any key identifier (id, ARN, alias name, alias ARN)
CiphertextKeys = Callable[[str], str | None]  # a CiphertextBlob (base64) -> the id of its key

_CRYPTO_CONTEXT = {"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair"}
# [KCK] kms:EncryptionAlgorithm: "Decrypt Encrypt ... ReEncrypt"; it "works even when the
# parameter doesn't appear in the request" (the default SYMMETRIC_DEFAULT).
_ALGORITHM = {"Encrypt", "Decrypt"}
_ACCOUNT_LEVEL = {"CreateKey", "ListKeys", "ListAliases", "GenerateRandom", "ListRetirableGrants"}


def encryption_context(context: Mapping[str, str] | None) -> Context:
    """[KCK] kms:EncryptionContext:<context-key> (one key per pair, single-valued) and
    kms:EncryptionContextKeys (multivalued); both absent without an encryption context."""
    if not context:
        return {}
    keys: Context = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
    keys["kms:EncryptionContextKeys"] = sorted(context)
    return keys


def request_alias(identifier: str | None) -> Context:
    """[KCK] kms:RequestAlias: the alias name when KeyId is an alias name or alias ARN
    (``arn:...:alias/x`` counts as ``alias/x``); absent for a key id or key ARN."""
    if not identifier:
        return {}
    if identifier.startswith("alias/"):
        return {"kms:RequestAlias": identifier}
    if identifier.startswith("arn:") and ":alias/" in identifier:
        return {"kms:RequestAlias": "alias/" + identifier.split(":alias/", 1)[1]}
    return {}


def key_context(key: KeyFacts, account: str) -> Context:
    """Keys of the KMS key itself, for KMS key resource operations [KAR]: aws:ResourceTag/<tag>
    [GCK], kms:ResourceAliases (multivalued), kms:KeySpec, kms:KeyUsage, kms:KeyOrigin,
    kms:MultiRegion, and kms:CallerAccount (the caller's account) [KCK]."""
    context: Context = {f"aws:ResourceTag/{k}": v for k, v in key.tags.items()}
    if key.aliases:
        context["kms:ResourceAliases"] = sorted(key.aliases)
    context.update(
        {
            "kms:KeySpec": key.key_spec,
            "kms:KeyUsage": key.key_usage,
            "kms:KeyOrigin": key.origin,
            "kms:MultiRegion": "true" if key.multi_region else "false",
            "kms:CallerAccount": account,
        }
    )
    return context


class KeyRequests:
    """Derives the accesses of one KMS request."""

    def __init__(self, keys: Keys, ciphertext_key: CiphertextKeys, account: str) -> None:
        self._keys = keys
        self._ciphertext_key = ciphertext_key
        self._account = account

    def _key(self, identifier: str | None, blob: str | None = None) -> KeyFacts:
        if not identifier and blob:
            # [RE]/Decrypt: KeyId is optional for symmetric ciphertext; KMS takes the key from it.
            identifier = self._ciphertext_key(blob)
        key = self._keys(identifier) if identifier else None
        if key is None:
            raise Underivable(f"unknown KMS key {identifier!r}")
        return key

    def derive(self, operation: str, params: Mapping[str, Any]) -> list[Access]:
        if operation == "ReEncrypt":
            return self._reencrypt(params)
        if operation in _ACCOUNT_LEVEL:
            return [Access(f"kms:{operation}", "*")]
        if operation in ("CreateAlias", "UpdateAlias", "DeleteAlias"):
            return self._alias(operation, params)
        identifier = params.get("KeyId")
        key = self._key(identifier, params.get("CiphertextBlob") if operation == "Decrypt" else None)
        # [ALIAS]: authorized on the key's ARN; the alias shows only as kms:RequestAlias.
        context: Context = {**key_context(key, self._account), **request_alias(identifier)}
        alternatives: tuple[tuple[Context, ...], ...] = ()
        if operation in _CRYPTO_CONTEXT:
            context.update(encryption_context(params.get("EncryptionContext")))
        if operation in _ALGORITHM:
            alternatives = (
                alternative("kms:EncryptionAlgorithm", params.get("EncryptionAlgorithm"), "SYMMETRIC_DEFAULT"),
            )
        if operation in ("GenerateMac", "VerifyMac"):
            context["kms:MacAlgorithm"] = params["MacAlgorithm"]  # [KCK] kms:MacAlgorithm
        if operation == "CreateGrant":
            # [KCK] kms:GrantOperations (multivalued), kms:GranteePrincipal, kms:RetiringPrincipal.
            context["kms:GrantOperations"] = sorted(params.get("Operations", []))
            context["kms:GranteePrincipal"] = params.get("GranteePrincipal", "")
            if params.get("RetiringPrincipal"):
                context["kms:RetiringPrincipal"] = params["RetiringPrincipal"]
            context.update(encryption_context((params.get("Constraints") or {}).get("EncryptionContextEquals")))
        return [Access(f"kms:{operation}", key.arn, context, alternatives, facts={"key": key.to_json()})]

    def _alias(self, operation: str, params: Mapping[str, Any]) -> list[Access]:
        """[ALIAS]: alias operations are authorized on the alias ARN and on the target key."""
        name = params["AliasName"]
        accesses = [Access(f"kms:{operation}", f"arn:aws:kms:*:{self._account}:{name}")]
        if params.get("TargetKeyId"):
            key = self._key(params["TargetKeyId"])
            accesses.append(Access(f"kms:{operation}", key.arn, key_context(key, self._account)))
        return accesses

    def _reencrypt(self, params: Mapping[str, Any]) -> list[Access]:
        """[RE]: one ReEncrypt is two authorizations, kms:ReEncryptFrom on the source key and
        kms:ReEncryptTo on the destination. [KCK] lists ReEncrypt for kms:EncryptionContext:* and
        kms:EncryptionContextKeys but does not say which of the request's two contexts (source,
        destination) each half is judged under, nor which algorithm: both readings per half.
        kms:ReEncryptOnSameKey [KCK] tells whether source and destination are the same key."""
        source = self._key(params.get("SourceKeyId"), params.get("CiphertextBlob"))
        destination = self._key(params.get("DestinationKeyId"))
        context_readings = _distinct(
            encryption_context(params.get(p)) for p in ("SourceEncryptionContext", "DestinationEncryptionContext")
        )
        algorithm_readings = _distinct(
            {"kms:EncryptionAlgorithm": params.get(p) or "SYMMETRIC_DEFAULT"}
            for p in ("SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm")
        )
        same = {"kms:ReEncryptOnSameKey": "true" if source.arn == destination.arn else "false"}
        halves = (
            ("kms:ReEncryptFrom", source, params.get("SourceKeyId")),
            ("kms:ReEncryptTo", destination, params.get("DestinationKeyId")),
        )
        return [
            Access(
                action,
                key.arn,
                {**key_context(key, self._account), **request_alias(identifier), **same},
                (context_readings, algorithm_readings),
                facts={"key": key.to_json()},
            )
            for action, key, identifier in halves
        ]


def _distinct(readings: Iterable[Context]) -> tuple[Context, ...]:
    found: list[Context] = []
    for reading in readings:
        if reading not in found:
            found.append(reading)
    return tuple(found)
