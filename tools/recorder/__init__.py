"""The request recorder: every AWS request the local stack and the tests send, as IAM sees it.

Local-only (never packaged: ``chalice package`` ships ``app.py`` and ``chalicelib/``).

- ``principals``: who sent a request. On AWS a request's principal is the role whose
  credentials signed it; locally each stage gets credentials of its own (a distinct access
  key id), so the signature names the stage exactly as it would on AWS.
- ``dynamodb``, ``kms``, ``derive``: what IAM authorizes for a request - the action(s), the
  resource ARN(s) and the condition keys AWS derives from its parameters, each rule citing
  the AWS documentation it encodes.
- ``capture``: the hook. It sits where moto authorizes a request
  (``BaseResponse._authenticate_and_authorize_normal_action``), so one code path sees the
  requests of the in-process moto (integration tests) and of the moto server (the local
  stack, every ``chalice local`` stage and tool process) alike.

The judge (tests/request_proof.py) evaluates what this records against the generated policies.
"""
