"""SigV4 for API Gateway's IAM authorizer (service ``execute-api``), credentials and region.

Credentials come from botocore's default chain (environment, profile, SSO, container or
instance role). For a loopback URL (``127.0.0.0/8``, ``::1``, ``localhost``: the local
stack of ``make dev``) the client signs with fixed dummy credentials instead, whether or
not real ones are configured: the local stack checks no signature, so nobody has to export
credentials for it, and real credentials never sign requests for a local port. Any other
URL without credentials is an error, never a dummy signature.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pii_vault_client.errors import CredentialsError

SERVICE = "execute-api"
LOCAL_REGION = "us-east-1"
LOCAL_ACCESS_KEY = "pii-vault-local"
LOCAL_SECRET_KEY = "pii-vault-local-not-a-secret"  # noqa: S105 - the local stack's published dummy key
_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


def is_loopback(url: str) -> bool:
    """``http(s)://127.x.y.z``, ``[::1]`` or ``localhost`` (exactly; not ``localhost.example``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_of(url: str, default: str | None = None) -> str:
    """The region in an execute-api URL, else ``default``, else the local stack's for loopback."""
    match = _API_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match.group("region")
    if default:
        return default
    if is_loopback(url):
        return LOCAL_REGION
    raise CredentialsError(f"cannot tell the region of {urlsplit(url).hostname}; pass region= (--region)")


def encoded_url(url: str) -> str:
    """The URL with its query percent-encoded as SigV4 canonicalises it.

    botocore signs the query string exactly as given, while API Gateway re-encodes every
    character outside ``A-Za-z0-9-_.~`` before checking: ``?fields=email,name`` signed
    raw would be refused. Encoding first makes what is signed equal what is checked.
    """
    parts = urlsplit(url)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True), quote_via=quote, safe="-_.~")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def sign(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    credentials: Any,
    region: str,
) -> dict[str, str]:
    """The headers to send: ``headers`` plus Host-bound SigV4 ``Authorization``,
    ``X-Amz-Date`` and, for temporary credentials, ``X-Amz-Security-Token``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method.upper(), url=encoded_url(url), data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def local_credentials() -> Any:
    from botocore.credentials import Credentials

    return Credentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)


class Signer:
    """Signs each request with fresh credentials (refreshable ones renew themselves).

    ``session``: a boto3 ``Session`` or botocore ``Session`` (its credentials, which it
    refreshes, and its region), or botocore credentials (``Credentials``,
    ``RefreshableCredentials``). ``credentials`` is the same as passing credentials as
    ``session``. Without either, botocore's default chain (``profile`` if given).
    """

    def __init__(
        self, *, session: Any = None, credentials: Any = None, region: str | None = None, profile: str | None = None
    ) -> None:
        if session is not None and credentials is not None:
            raise ValueError("pass session= or credentials=, not both")
        if session is not None and profile is not None:
            raise ValueError("a session has its own profile: pass session= or profile=, not both")
        source = session if session is not None else credentials
        self._given_session = source if hasattr(source, "get_credentials") else None
        self._explicit = None if self._given_session is not None else source
        self._region = region
        self._profile = profile
        self._session: Any = None

    def _botocore_session(self) -> Any:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.Session(profile=self._profile)
        return self._session

    def credentials_for(self, url: str) -> Any:
        if self._explicit is not None:
            return self._explicit
        if self._given_session is not None:
            found = self._given_session.get_credentials()
            if found is None:
                raise CredentialsError("the session given has no credentials")
            return found
        if is_loopback(url):
            return local_credentials()
        found = self._botocore_session().get_credentials()
        if found is None:
            raise CredentialsError("no AWS credentials found (environment, profile, SSO or role)")
        return found

    def _configured_region(self) -> str | None:
        session = self._given_session
        if session is None:
            return str(self._botocore_session().get_config_variable("region") or "") or None
        if hasattr(session, "region_name"):  # boto3
            return session.region_name or None
        return str(session.get_config_variable("region") or "") or None  # botocore

    def region_for(self, url: str) -> str:
        configured = self._region
        if configured is None and not is_loopback(url) and not _API_HOST.match(urlsplit(url).hostname or ""):
            configured = self._configured_region()
        return region_of(url, configured)

    def headers(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        credentials = self.credentials_for(url)
        frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
        return sign(method, url, body, headers, frozen, self.region_for(url))
