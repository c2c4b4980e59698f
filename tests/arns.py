"""One environment's ARNs for the policy tests (``infra.arns.AccountArns``): the data key, the
fleet and beacon HMAC keys, and every table named after the PII table, as deployed."""

from __future__ import annotations

from chalicelib.support.environment import Key
from infra.arns import AccountArns


def other_key(key_arn: str, digit: str) -> str:
    """Another key id of the same account and region (its first eight hex digits replaced)."""
    head, key_id = key_arn.rsplit("/", 1)
    if key_id.startswith("mrk-"):
        return f"{head}/mrk-{digit * 8}{key_id[12:]}"
    return f"{head}/{digit * 8}{key_id[8:]}"


def account_arns(
    key_arn: str,
    table_arn: str,
    *,
    fleet_mac_key_arn: str | None = None,
    beacon_key_arn: str | None = None,
    functions: str = "pii-vault",
    customer_accounts: tuple[str, ...] = (),
) -> AccountArns:
    keys = {
        Key.DATA: key_arn,
        Key.FLEET_MAC: fleet_mac_key_arn or other_key(key_arn, "f"),
        Key.BEACON_MAC: beacon_key_arn or other_key(key_arn, "b"),
    }
    return AccountArns.of(table_arn, keys, functions=functions, customer_accounts=customer_accounts)
