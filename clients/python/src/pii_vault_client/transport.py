"""HTTP for the client: one pooled connection manager per ``Client``, connections reused.

urllib3 (which botocore, the client's other dependency, already requires) keeps up to
``Config.max_pool_connections`` keep-alive connections per host; the client's own retry
loop decides what is retried, so urllib3 retries nothing and follows no redirect.
Proxies come from the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) as for the
standard library, except for loopback URLs (the local stack), which are never proxied.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Callable, Optional
from urllib.parse import urlsplit

import urllib3

from pii_vault_client.config import Config
from pii_vault_client.signing import is_loopback

# (method, url, headers, body, timeout seconds) -> (status, headers with lower-case names, body)
Answer = tuple[int, dict[str, str], bytes]
Transport = Callable[[str, str, Mapping[str, str], Optional[bytes], float], Answer]


class TransportFailure(OSError):
    """No HTTP answer (connection refused or reset, DNS, TLS, timeout): the client may retry."""


class PooledTransport:
    """A ``Transport`` over urllib3 pool managers: one direct, one per proxy in use."""

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._direct = urllib3.PoolManager(maxsize=self._config.max_pool_connections, retries=False)
        self._proxied: dict[str, urllib3.ProxyManager] = {}

    def _manager(self, url: str) -> urllib3.PoolManager:
        proxy = None if is_loopback(url) else _proxy_for(url)
        if proxy is None:
            return self._direct
        if proxy not in self._proxied:
            size = self._config.max_pool_connections
            self._proxied[proxy] = urllib3.ProxyManager(proxy, maxsize=size, retries=False)
        return self._proxied[proxy]

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float) -> Answer:
        connect = min(self._config.connect_timeout, timeout)
        try:
            answer = self._manager(url).request(
                method,
                url,
                body=body,
                headers=dict(headers),
                timeout=urllib3.Timeout(connect=connect, read=timeout),
                redirect=False,
                preload_content=True,  # read whole, so the connection goes back to the pool
            )
        except urllib3.exceptions.HTTPError as exc:
            raise TransportFailure(type(exc).__name__) from exc
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.data

    def close(self) -> None:
        """Close every pooled connection (the client stays usable: pools reopen on demand)."""
        self._direct.clear()
        for manager in self._proxied.values():
            manager.clear()


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for ``url``, as ``urllib.request`` would choose it."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)
