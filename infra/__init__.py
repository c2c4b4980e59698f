"""pii-vault's infrastructure: CloudFormation templates, IAM policies, deploy parameters and the
local (moto) bootstrap, built from the stage registry (``chalicelib.stages``) and the store's
layout, never from the app's wiring. ``python -m infra`` writes and packages the templates.

- ``cfn``: intrinsics, ``Resource`` and ``Template`` (refuses a logical id twice), checkov skips;
- ``specs``: the tables and KMS keys, stated once; ``tables``, ``keys``: their resources;
  ``local``: the same on moto;
- ``arns``: the ARNs a policy names, for an account (strings) or the base stack (intrinsics);
- ``iam/``: every policy (stage roles, keys, tenant keys, callers);
- ``roles``, ``observability``, ``dashboard``, ``base``: the base stack;
- ``environment``, ``params``, ``merge``: each stage's environment, parameters and merge template;
- ``deployment``: one stage in one environment as concrete values;
- ``package``, ``examples``, ``__main__``: writing, packaging, the linters' inputs, the CLI.
"""
