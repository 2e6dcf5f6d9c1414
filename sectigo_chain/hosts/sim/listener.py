"""A real TLS listener on 127.0.0.1 for a :class:`~sectigo_chain.hosts.sim.host.SimulatedHost`.

DESIGN.md section 6: it serves, per SNI name and per ``IP:port``, exactly the chain the
simulated HTTP.sys serves right now (:meth:`SimulatedHost.tls_entry`, which honours the
served-chain cache), with the leaf's key, so the real :mod:`sectigo_chain.tls.fetch` and
:mod:`sectigo_chain.trust.profiles` code judges it over a real handshake.

One loopback server (an ephemeral port) stands for each ``IP:port`` the host's https bindings
listen on (``0.0.0.0:443`` for ``*:443``). At every handshake the server asks the host which
HTTP.sys entry answers, the way HTTP.sys picks one (as documented, a model): the SNI entry
``name:port`` first (case-insensitive), then, for a name on a port with a Central Certificate
Store entry and no ``IP:port`` one, ``ccs:port`` (the PFX named after the name), then
``IP:port``, then ``0.0.0.0:port``; no entry means the handshake is refused (a
``handshake_failure`` alert). The chain is read again at every handshake, so a change made
by a template (apply, a restart) shows up at the next connection; the ``SSLContext`` is
cached per chain, so a handshake stays cheap.

>>> host = SimulatedHost("broken-r46")
>>> with host.start_tls() as listener:            # doctest: +SKIP
...     ip, port, name = listener.address_for("Default Web Site")
...     report = check_endpoint(ip, port, servername=name, catalog=host.catalog)
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509.oid import NameOID

from sectigo_chain.errors import InputError
from sectigo_chain.testing.tls_servers import LoopbackTLSServer, ServerLoop, server_context
from sectigo_chain.x509.certs import dns_names, thumbprint

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sectigo_chain.hosts.sim.model import HostModel, SimBinding
    from sectigo_chain.x509.certs import PrivateKey


class ListenerHost(Protocol):
    """What the listener needs of the simulated host (``SimulatedHost`` is one); typing
    against this keeps the listener below ``host``."""

    model: HostModel

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    @property
    def target(self) -> str: ...

    def tls_entry(
        self, endpoint: str, servername: str | None = None
    ) -> tuple[list[x509.Certificate], PrivateKey] | None: ...


__all__ = ["ServedHandshake", "SimTLSListener"]

_LOOPBACK = ("127.0.0.1", "localhost")
_MAX_CONTEXTS = 64


@dataclass(frozen=True)
class ServedHandshake:
    """One handshake the listener answered: which loopback server, which SNI name, which
    HTTP.sys entry answered (None: refused) and the chain sent (thumbprints, wire order)."""

    listener: str
    servername: str | None
    entry: str | None
    chain: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)
def _placeholder() -> tuple[list[x509.Certificate], Any]:
    """A throwaway self-signed certificate for a host that serves nothing yet."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sectigo-chain placeholder")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, SHA256())
    )
    return [cert], key


def _listen_key(ip: str, port: int) -> str:
    """The ``IP:port`` an https binding listens on, as HTTP.sys names it."""
    return f"{'0.0.0.0' if ip in ('*', '') else ip}:{port}"  # noqa: S104


class _EntryServer(LoopbackTLSServer):
    """One loopback server standing for one ``IP:port``; picks the chain at each handshake."""

    def __init__(self, owner: SimTLSListener, key: str, loop: ServerLoop) -> None:
        self._owner = owner
        self.listen_key = key
        chain, leaf_key = owner.any_entry()
        # The context given here is only the one the handshake starts with: _on_sni always
        # switches to the entry's context or refuses the handshake.
        super().__init__(
            chain,
            leaf_key,
            min_version=owner.min_version,
            max_version=owner.max_version,
            loop=loop,
        )

    def _on_sni(  # type: ignore[override]  # may refuse: returns an alert
        self, sslobj: Any, name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        if name is not None:
            self._names[sslobj] = name
        try:
            context = self._owner.context_for(self.listen_key, name)
        except Exception as exc:  # never let a model error escape into OpenSSL
            self._owner.errors.append(f"{self.listen_key} ({name}): {type(exc).__name__}: {exc}")
            context = None
        if context is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sslobj.context = context
        return None


class SimTLSListener:
    """Real TLS on loopback for a simulated host (see the module docstring).

    Use as a context manager or call :meth:`start` / :meth:`close`.
    :meth:`address_for` gives the ``(ip, port, servername)`` to connect to for a site or an
    HTTP.sys entry; :attr:`served` records what each handshake got.
    """

    def __init__(
        self,
        host: ListenerHost,
        *,
        bind: str = "127.0.0.1",
        min_version: str = "1.2",
        max_version: str = "1.3",
    ) -> None:
        if bind not in _LOOPBACK:
            raise InputError(
                f"the simulated host's TLS listener binds to 127.0.0.1 only, not {bind!r}"
            )
        self.host = host
        self.min_version = min_version
        self.max_version = max_version
        self._loop = ServerLoop()
        self._servers: dict[str, _EntryServer] = {}
        self._contexts: dict[tuple[bytes, ...], ssl.SSLContext] = {}
        self._started = False
        self.served: deque[ServedHandshake] = deque(maxlen=10_000)
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SimTLSListener:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Open one loopback server per ``IP:port`` the host's https bindings use."""
        if self._started:
            return
        self._loop.start()
        self._started = True
        with self.host.lock:
            keys = sorted({_listen_key(b.ip, b.port) for _, b in self.host.model.https_bindings()})
        try:
            for key in keys:
                self._server(key)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every server and the loop thread."""
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        if self._started:
            self._started = False
            self._loop.close()

    # ------------------------------------------------------------------ addresses

    @property
    def endpoints(self) -> dict[str, tuple[str, int]]:
        """``IP:port`` on the host -> the loopback ``(ip, port)`` standing for it."""
        return {key: server.address for key, server in sorted(self._servers.items())}

    def address_for(self, site_or_endpoint: str) -> tuple[str, int, str | None]:
        """``(ip, port, servername)`` to check a site (its first https binding) or an HTTP.sys
        entry (``0.0.0.0:443``, ``www.example.test:443``).

        The server name is the binding's host header, else the first DNS name of the
        certificate bound there (what a browser would send); None if there is neither.
        """
        if not self._started:
            raise InputError("the TLS listener is not started: use it as a context manager")
        with self.host.lock:
            key, servername = self._resolve(site_or_endpoint)
        server = self._server(key)
        return server.host, server.port, servername

    def _resolve(self, what: str) -> tuple[str, str | None]:
        model = self.host.model
        site = model.sites.get(what) or next(
            (s for s in model.sites.values() if s.name.lower() == what.lower()), None
        )
        binding: SimBinding | None = None
        if site is not None:
            https = [b for b in site.bindings if b.protocol == "https"]
            if not https:
                raise InputError(f"site {site.name!r} has no https binding to connect to")
            binding = https[0]
            entry = binding.endpoint
        else:
            entry = next((e for e in model.sslcert if e.lower() == what.lower()), what)
            if entry not in model.sslcert:
                sites = ", ".join(sorted(model.sites)) or "none"
                entries = ", ".join(sorted(model.sslcert)) or "none"
                raise InputError(
                    f"{what!r} is neither a site nor an HTTP.sys entry of {self.host.target} "
                    f"(sites: {sites}; entries: {entries})"
                )
            binding = next((b for _, b in model.https_bindings() if b.endpoint == entry), None)
        port = int(entry.rsplit(":", 1)[1])
        key = _listen_key(binding.ip, binding.port) if binding else _listen_key("*", port)
        name: str | None = binding.host if binding and binding.host else None
        if name is None and model.sslcert.get(entry, None) is not None:
            if model.sslcert[entry].kind == "hostnameport":
                name = entry.rsplit(":", 1)[0]
            else:
                leaf = model.leaf_for(entry)
                names = dns_names(leaf.cert) if leaf is not None else ()
                name = names[0] if names else None
        return key, name

    # ------------------------------------------------------------------ handshakes

    def any_entry(self) -> tuple[list[x509.Certificate], Any]:
        """Some (chain, key) for the context a handshake starts with (never served: every
        handshake switches to its entry's context or is refused)."""
        with self.host.lock:  # the leaf only: building chains would fill the served cache
            model = self.host.model
            leaves = [model.leaf_for(entry) for entry in sorted(model.sslcert)]
        for leaf in leaves:
            if leaf is not None and leaf.key is not None:
                return [leaf.cert], leaf.key
        return _placeholder()

    def entry_for(self, listen_key: str, servername: str | None) -> str | None:
        """The HTTP.sys entry that answers a client on ``listen_key`` sending ``servername``."""
        sslcert = self.host.model.sslcert
        ip, port = listen_key.rsplit(":", 1)
        if servername:
            wanted = f"{servername.lower()}:{port}"
            for entry, record in sslcert.items():
                if record.kind == "hostnameport" and entry.lower() == wanted:
                    return entry
        ip_entries = [e for e in (f"{ip}:{port}", f"0.0.0.0:{port}")
                      if e in sslcert and sslcert[e].kind == "ipport"]  # fmt: skip
        ccs = sslcert.get(f"ccs:{port}")
        if servername and ccs is not None and ccs.kind == "ccs" and not ip_entries:
            # A CCS entry answers a name no SNI entry has. How it ranks against an IP:port
            # entry on the same port is not modelled (not documented): only a port without one.
            return f"ccs:{port}"
        return ip_entries[0] if ip_entries else None

    def context_for(self, listen_key: str, servername: str | None) -> ssl.SSLContext | None:
        """The context that serves what the host serves now (None: refuse the handshake)."""
        with self.host.lock:
            entry = self.entry_for(listen_key, servername)
            served = self.host.tls_entry(entry, servername) if entry is not None else None
        if served is None or not served[0]:
            self.served.append(ServedHandshake(listen_key, servername, None))
            return None
        chain, key = served
        self.served.append(
            ServedHandshake(listen_key, servername, entry, tuple(thumbprint(c) for c in chain))
        )
        cache_key = tuple(c.fingerprint(SHA256()) for c in chain)
        context = self._contexts.get(cache_key)
        if context is None:
            if len(self._contexts) >= _MAX_CONTEXTS:
                self._contexts.clear()
            context = server_context(
                chain,
                key,
                min_version=self.min_version,
                max_version=self.max_version,
            )
            self._contexts[cache_key] = context
        return context

    def _server(self, key: str) -> _EntryServer:
        server = self._servers.get(key)
        if server is None:
            server = _EntryServer(self, key, self._loop)
            server.start()
            self._servers[key] = server
        return server
