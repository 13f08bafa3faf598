"""SSRF guard: refuse loopback, private, link-local and other non-public targets.

Checked twice per hop: the addresses a host name resolves to before connecting, and the address
the connection actually reached (so a DNS answer that changes between the two — rebinding — is
caught too).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pipeline.crawl.errors import FetchError


def _bad(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return _bad(addr.ipv4_mapped)
    return bool(
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_unspecified
        or addr.is_multicast
    )


def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP(S) schemes and, unless allowed, hosts resolving to non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"refused URL (only http/https): {url}", kind="refused")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        # DNS failures are often passing: let the URL be retried on a later run.
        raise FetchError(f"cannot resolve {parts.hostname}: {exc}", kind="dns", retryable=True) from None
    for info in infos:
        check_address(str(info[4][0]), parts.hostname, allow_private)


def check_address(address: str, host: str, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise FetchError(f"refused unparseable address {address!r} for {host}", kind="refused") from None
    if _bad(addr):
        raise FetchError(
            f"refused private/loopback address {addr} for {host} (use --allow-private-hosts)",
            kind="refused",
        )
