"""The one place the request proof imports the policy generator from.

The generator lives in tools/ today: tools/stacks.py assembles the deployable base stack (every
stage role's identity policies, every KMS key's key policy) from tools/policies.py, which also
writes the key policy of a tenant's own key. When the generator moves (to infra/), only these
imports change.
"""

from tools.policies import TENANT_KEY_ACTIONS, tenant_key_policy
from tools.stacks import base_template

__all__ = ["TENANT_KEY_ACTIONS", "base_template", "tenant_key_policy"]
