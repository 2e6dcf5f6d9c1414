"""Fetch the certificate chain a TLS server serves, exactly as sent on the wire.

One handshake per TLS version asked for, or (``tls_versions=None``) one handshake in which the
server picks TLS 1.2 or 1.3, with a handshake per version only when that one fails for a reason
other than reachability. Certificates are NOT verified (this module only observes; the chain
and profile modules judge). Every fetch is bounded by a connect, a handshake and a total
deadline, so a server that hangs, resets, speaks plain text or sends garbage gives a typed
:class:`~sectigo_chain.errors.TLSFetchError` in time. :func:`fetch_many` drives many handshakes
at once from one thread: non-blocking sockets, one selector, pyOpenSSL memory BIOs for TLS;
:func:`fetch_as_completed` hands over each target's result as soon as it is complete.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from OpenSSL import SSL

from sectigo_chain.errors import CertificateLoadError, InputError, TLSFetchError, TLSHandshakeError
from sectigo_chain.tls._engine import (
    RANK_HANDSHAKE,
    RANK_RESET,
    RANK_VERSION,
    Engine,
    Failure,
    Handshake,
    Job,
    idna_name,
    is_ip,
)
from sectigo_chain.x509._record import Frozen, field
from sectigo_chain.x509.load import checked_certificate

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_CERTIFICATES",
    "NO_SNI",
    "FetchResult",
    "ServedChain",
    "Target",
    "fetch_as_completed",
    "fetch_many",
    "fetch_served_chain",
]

Ended = tuple[str, Handshake | None, Failure | None]
"""How one job of a target ended: the TLS version asked for, the handshake or the failure."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a whole fetch (all TLS versions of one target) may take."""
MAX_CERTIFICATES = 64
"""Certificates kept from a served chain; more are counted and dropped (``truncated``)."""
NO_SNI = ""
"""Pass as ``servername`` to send no server name (SNI) at all."""

_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
_EITHER = "1.2/1.3"  # the one handshake of ``tls_versions=None``: the server picks the version
_BOUNDS = {
    **{v: (t, t) for v, t in _VERSIONS.items()},
    _EITHER: (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION),
}
# A failed negotiated handshake is retried once per version unless the server was unreachable
# or timed out: a server that chokes on a TLS 1.3 ClientHello may still speak TLS 1.2.
_RETRY_RANKS = {RANK_VERSION, RANK_HANDSHAKE, RANK_RESET}
# We only read certificates, so accept whatever an old server offers (static RSA, SHA-1 ...).
_CIPHERS = b"DEFAULT:!aNULL:!eNULL:@SECLEVEL=0"
# The groups the client offers, OpenSSL 3.0's default list (what Python's ``ssl`` offered
# before the engine moved to pyOpenSSL): one key share, X25519. OpenSSL 4.0's default adds the
# hybrid post-quantum X25519MLKEM768 and sends two key shares, a 1.5 KB ClientHello and about
# 0.1 ms more CPU per handshake, for secrecy that a check of public certificates does not need.
GROUPS = b"X25519:P-256:X448:P-521:P-384:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"


class Target(Frozen):
    """A TLS endpoint: ``host``, ``port`` and the server name to send (SNI).

    ``servername=None`` sends ``host`` as the server name unless it is an IP address;
    ``servername=NO_SNI`` (``""``) sends none.
    """

    host: str
    port: int = 443
    servername: str | None = None

    def __post_init__(self) -> None:
        if not self.host or not isinstance(self.host, str):
            raise InputError(f"target host {self.host!r} is empty; give a host name or IP address")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise InputError(f"target port {self.port!r} is not a TCP port (1-65535)")
        for name in (self.host, self.sni or ""):
            if is_ip(name):
                continue
            try:
                idna_name(name)
            except UnicodeError as exc:
                raise InputError(f"{name!r} is not a valid host name: {exc}") from None

    @classmethod
    def parse(cls, text: str, *, default_port: int = 443) -> Target:
        """Read ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
        text = text.strip()
        host, sep, port = text.rpartition(":")
        if text.startswith("[") and "]" in text:
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
            if rest and not rest.startswith(":"):
                raise InputError(f"target {text!r} is not [IPv6]:port")
        elif not sep or ":" in host:  # no port, or a bare IPv6 address
            host, port = text, ""
        if port and not port.isdigit():
            raise InputError(f"target {text!r}: port {port!r} is not a number (use host:port)")
        return cls(host, int(port) if port else default_port)

    @property
    def sni(self) -> str | None:
        """The server name actually sent, or None."""
        if self.servername is not None:
            return self.servername or None
        return None if is_ip(self.host) else self.host

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.servername == NO_SNI:
            return f"{host}:{self.port} (no SNI)"
        named = self.servername is not None and self.servername != self.host
        return f"{host}:{self.port} (SNI {self.servername})" if named else f"{host}:{self.port}"


class ServedChain(Frozen):
    """What one handshake showed: the certificates in wire order, leaf first as sent.

    ``der`` and ``certificates`` hold at most ``max_certificates`` entries; ``sent_count``
    is how many the server sent, so ``truncated`` says whether some were dropped.
    """

    host: str
    port: int
    servername: str | None
    address: str
    tls_version: str
    cipher: str
    der: tuple[bytes, ...]
    certificates: tuple[x509.Certificate, ...] = field(repr=False)
    sent_count: int
    #: Why the certificates from the first damaged one on were left out (a served certificate
    #: whose key, names or extensions do not parse): a chain problem, reported as a finding.
    damaged: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        return not self.damaged and self.sent_count > len(self.der)

    def __str__(self) -> str:
        """The handshake and the certificates in wire order (subject names, no DER)."""
        sni = f" (SNI {self.servername})" if self.servername else ""
        lines = [f"{self.host}:{self.port}{sni} via {self.address}: TLS {self.tls_version} "
                 f"{self.cipher}, {self.sent_count} certificate(s) sent"]  # fmt: skip
        for i, cert in enumerate(self.certificates):
            lines.append(f"  {i} {cert.subject.rfc4514_string()}")
        if self.truncated:
            lines.append(f"  ... {self.sent_count - len(self.der)} more not kept")
        return "\n".join(lines)


class FetchResult(Frozen):
    """The handshakes of one target: one :class:`ServedChain` per TLS version that worked,
    and the error of each version that did not (for example a server without TLS 1.3)."""

    target: str
    host: str
    port: int
    servername: str | None
    handshakes: Mapping[str, ServedChain]
    errors: Mapping[str, TLSFetchError]

    @property
    def chain(self) -> ServedChain:
        """The chain of the first requested TLS version that worked."""
        return next(iter(self.handshakes.values()))

    @property
    def chains_agree(self) -> bool:
        """True when every TLS version that worked served the same certificates."""
        return len({h.der for h in self.handshakes.values()}) <= 1

    def __str__(self) -> str:
        """One block per TLS version that worked, one line per version that did not."""
        parts = [f"{self.target}:"]
        for served in self.handshakes.values():
            parts.append("  " + str(served).replace("\n", "\n  "))
        for version, error in self.errors.items():
            parts.append(f"  TLS {version}: {type(error).__name__}: {error}")
        return "\n".join(parts)


def fetch_served_chain(
    host: str,
    port: int = 443,
    *,
    servername: str | None = None,
    tls_versions: Sequence[str] | None = ("1.2", "1.3"),
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float | None = None,
    handshake_timeout: float | None = None,
    max_certificates: int = MAX_CERTIFICATES,
) -> FetchResult:
    """Do one handshake per TLS version with ``host:port`` and return what was served.

    The versions are tried at the same time. ``tls_versions=None`` does one handshake in
    which the server picks TLS 1.2 or 1.3 (``handshakes`` then holds the version it picked);
    only if that fails for another reason than reachability (refused, unresolvable, timeout)
    is each version tried on its own. ``timeout`` bounds the whole fetch;
    ``connect_timeout`` and ``handshake_timeout`` (default: ``timeout``) bound each phase.
    A version the server refuses is recorded in ``FetchResult.errors``; if no version works,
    the most telling failure is raised: :class:`TLSConnectError` (refused, reset,
    unresolvable), :class:`TLSTimeout`, or :class:`TLSHandshakeError` (not TLS, version not
    supported, handshake failure). Nothing is verified: not the chain, not the name.
    """
    (outcome,) = fetch_many(
        [Target(host, port, servername)],
        tls_versions=tls_versions,
        timeout=timeout,
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
        max_certificates=max_certificates,
    )
    if isinstance(outcome, TLSFetchError):
        raise outcome
    return outcome


def fetch_many(
    targets: Iterable[Target | str | tuple[str, int]],
    *,
    tls_versions: Sequence[str] | None = ("1.2", "1.3"),
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float | None = None,
    handshake_timeout: float | None = None,
    concurrency: int = 64,
    max_certificates: int = MAX_CERTIFICATES,
) -> list[FetchResult | TLSFetchError]:
    """Fetch many targets at once; one result or error per target, in the order given.

    Targets are ``Target`` objects, ``"host:port"`` strings or ``(host, port)`` tuples.
    ``concurrency`` bounds the connections open at once (each TLS version of each target is
    one connection). One target's failure never affects another's. The deadlines of a target
    start when its first connection starts. See :func:`fetch_as_completed` to get each result
    as soon as it is there.
    """
    run = _Run(
        targets,
        tls_versions,
        timeout,
        connect_timeout,
        handshake_timeout,
        concurrency,
        max_certificates,
    )
    run.engine.run(run.flat, concurrency, run.follow_up)
    return [run.outcome(i) for i in range(len(run.targets))]


def fetch_as_completed(
    targets: Iterable[Target | str | tuple[str, int]],
    *,
    tls_versions: Sequence[str] | None = ("1.2", "1.3"),
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float | None = None,
    handshake_timeout: float | None = None,
    concurrency: int = 64,
    max_certificates: int = MAX_CERTIFICATES,
    helper_process: bool = False,
) -> Generator[tuple[int, FetchResult | TLSFetchError], None, None]:
    """Like :func:`fetch_many`, but yields ``(index, result or error)`` per target as soon as
    that target is done (so in completion order; ``index`` is its place in ``targets``).

    Everything runs in the caller's thread: while the caller works on one result, the servers
    go on with the handshakes already under way, and that time is not counted against any
    target's deadlines. Arguments are checked at once (:class:`InputError`); nothing connects
    before the first ``next()``. Closing the iterator early closes every connection.

    ``helper_process=True``: the handshakes run in a forked helper process while the caller
    works on the results (on Linux, when the calling process runs a single thread; elsewhere
    as without it). Same results; worth it for long lists on a machine with two cores or
    more (``docs/tls.md``).
    """
    run = _Run(
        targets,
        tls_versions,
        timeout,
        connect_timeout,
        handshake_timeout,
        concurrency,
        max_certificates,
    )
    return _stream(run, helper_process)


def judged_as_completed(
    targets: Sequence[Target],
    judge: Callable[[int, FetchResult | TLSFetchError], Any],
    *,
    tls_versions: Sequence[str] | None,
    timeout: float,
    concurrency: int,
    helper_process: bool,
) -> Generator[tuple[int, Any], None, None]:
    """(private, for ``check_many``) :func:`fetch_as_completed` whose helper process, if any,
    may also judge targets: yields ``(index, outcome)`` or ``(index, _helper.Judged)``."""
    run = _Run(targets, tls_versions, timeout, None, None, concurrency, MAX_CERTIFICATES)
    return _stream(run, helper_process, judge)


def _stream(
    run: _Run, helper_process: bool, judge: Callable[[int, Any], Any] | None = None
) -> Generator[tuple[int, Any], None, None]:
    """The engine in a helper process where one was asked for and is safe, else here."""
    if helper_process:
        from sectigo_chain.tls import _helper

        if _helper.available():
            return _helper.as_completed(run, _as_completed, judge)
    return _as_completed(run)


def _as_completed(run: _Run) -> Generator[tuple[int, FetchResult | TLSFetchError], None, None]:
    steps = run.engine.run_iter(run.flat, run.concurrency, run.follow_up)
    try:
        for index in steps:
            yield index, run.outcome(index)
    finally:
        steps.close()  # closes the connections still open when the caller stops early


class _Run:
    """One fetch of many targets: checked arguments, the engine and its jobs."""

    def __init__(
        self,
        targets: Iterable[Target | str | tuple[str, int]],
        tls_versions: Sequence[str] | None,
        timeout: float,
        connect_timeout: float | None,
        handshake_timeout: float | None,
        concurrency: int,
        max_certificates: int,
    ) -> None:
        if tls_versions is None:
            versions: tuple[str, ...] = (_EITHER,)
        else:
            versions = tuple(dict.fromkeys(tls_versions))
            unknown = [v for v in versions if v not in _VERSIONS]
            if not versions or unknown:
                raise InputError(
                    f"TLS versions {list(tls_versions)!r}: use a subset of ['1.2', '1.3']"
                )
        limits = {"timeout": timeout, "connect_timeout": connect_timeout}
        for name, value in {**limits, "handshake_timeout": handshake_timeout}.items():
            if value is not None and not value > 0:
                raise InputError(f"{name} must be a positive number of seconds, not {value!r}")
        if concurrency < 1 or max_certificates < 1:
            raise InputError("concurrency and max_certificates must be at least 1")
        self.targets = [_as_target(t) for t in targets]
        self.concurrency, self.limit = concurrency, max_certificates
        asked = None if versions == (_EITHER,) else versions  # checked, not re-read
        self.settings = (asked, timeout, connect_timeout, handshake_timeout)
        self.engine = Engine(
            timeout=timeout,
            connect_timeout=min(connect_timeout or timeout, timeout),
            handshake_timeout=min(handshake_timeout or timeout, timeout),
        )
        contexts = {v: _client_context(v) for v in versions}
        self.jobs = [
            [Job(self.engine, i, t.host, t.port, t.sni, v, contexts[v]) for v in versions]
            for i, t in enumerate(self.targets)
        ]
        self.flat = [job for group in self.jobs for job in group]

    def follow_up(self, job: Job) -> list[Job]:
        """After a failed negotiated handshake, one handshake per version (see the module)."""
        failure = job.failure
        if job.version != _EITHER or failure is None or failure.rank not in _RETRY_RANKS:
            return []
        target = self.targets[job.group]
        more = [
            Job(self.engine, job.group, target.host, target.port, target.sni, v, _client_context(v))
            for v in _VERSIONS
        ]
        self.jobs[job.group].extend(more)
        return more

    def outcome(self, index: int) -> FetchResult | TLSFetchError:
        return self.outcome_of(index, [(j.version, j.result, j.failure) for j in self.jobs[index]])

    def outcome_of(self, index: int, ended: Sequence[Ended]) -> FetchResult | TLSFetchError:
        """The outcome of target ``index`` from how its jobs ended elsewhere (a helper)."""
        return _outcome(self.targets[index], ended, self.limit)

    def subset(self, indexes: Sequence[int]) -> _Run:
        """A new run of these targets only, with the same settings."""
        return _Run([self.targets[i] for i in indexes], *self.settings, self.concurrency,
                    self.limit)  # fmt: skip


def _as_target(value: Target | str | tuple[str, int]) -> Target:
    if isinstance(value, Target):
        return value
    if isinstance(value, str):
        return Target.parse(value)
    host, port = value
    return Target(host, port)


@functools.lru_cache(maxsize=len(_BOUNDS))
def _client_context(version: str) -> SSL.Context:
    """The client context of one TLS version (or of both, ``1.2/1.3``), made once (it keeps no
    per-connection state: no session is cached or resumed, so every handshake still shows the
    full chain). Nothing is verified here: the chain is judged afterwards."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    low, high = _BOUNDS[version]
    ctx.set_min_proto_version(low)
    ctx.set_max_proto_version(high)
    ctx.set_cipher_list(_CIPHERS)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_LEGACY_SERVER_CONNECT | SSL.OP_NO_COMPRESSION)
    _set_groups(ctx, GROUPS)
    return ctx


def _set_groups(ctx: SSL.Context, groups: bytes) -> bool:
    """Offer ``groups`` (OpenSSL's ``SSL_CTX_set1_groups_list`` syntax); False, and OpenSSL's
    defaults kept, when this pyOpenSSL has no way to: pyOpenSSL 26 has no method for it, so
    this calls the function through cryptography's OpenSSL binding, which pyOpenSSL itself uses
    (``tests/integration/test_tls_fetch.py`` reads the ClientHello on the wire)."""
    from cryptography.hazmat.bindings.openssl.binding import Binding

    handle = getattr(ctx, "_context", None)
    setter = getattr(Binding.lib, "SSL_CTX_set1_curves_list", None)
    if handle is None or setter is None:
        return False
    return bool(setter(handle, groups) == 1)


def _outcome(target: Target, ended: Sequence[Ended], limit: int) -> FetchResult | TLSFetchError:
    handshakes: dict[str, ServedChain] = {}
    failures: dict[str, Failure] = {}
    retried = len(ended) > 1 and ended[0][0] == _EITHER
    for asked, result, failure in ended[1:] if retried else ended:  # a retry supersedes
        # The negotiated handshake is filed under the version the server picked.
        version = result.tls_version if result and asked == _EITHER else asked
        if result is not None:
            served = _served(target, result, limit)
            if isinstance(served, ServedChain):
                handshakes[version] = served
                continue
            failures[version] = served
        elif failure is not None:
            failures[version] = failure
    errors = {v: _error(target, f.kind, {v: f}) for v, f in failures.items()}
    if handshakes:
        return FetchResult(target.label, target.host, target.port, target.sni, handshakes, errors)
    best = max(failures.values(), key=lambda f: f.rank)  # the first of equal ranks
    return _error(target, best.kind, failures)


@functools.lru_cache(maxsize=4096)
def certificate(der: bytes) -> x509.Certificate:
    """The certificate of ``der``, parsed once: every endpoint that serves the same
    intermediate (and every TLS version of one endpoint) gets the same object, so what is
    memoised about it (names, extensions, fingerprints, signatures) is worked out once."""
    return x509.load_der_x509_certificate(der)


@functools.lru_cache(maxsize=4096)
def _damage(der: bytes) -> str | None:
    """Why the certificate of ``der`` is damaged (a field cryptography parses lazily does not
    parse), else None; worked out once per certificate, like :func:`certificate`."""
    try:
        checked_certificate(certificate(der))
    except CertificateLoadError as exc:
        return exc.problem
    return None


def _served(target: Target, hs: Handshake, limit: int) -> ServedChain | Failure:
    kept = hs.der[:limit]
    try:
        certs = tuple(certificate(d) for d in kept)
    except ValueError as exc:
        what = f"the server sent a certificate over TLS {{v}} that cannot be parsed: {exc}"
        return Failure(TLSHandshakeError, what)
    damaged: tuple[str, ...] = ()
    for index, der in enumerate(kept):
        problem = _damage(der)
        if problem is not None:
            if index == 0:
                what = f"the server sent a damaged certificate over TLS {{v}}: {problem}"
                return Failure(TLSHandshakeError, what)
            damaged = (
                f"served certificate #{index + 1} (of {len(hs.der)} sent) is damaged: "
                f"{problem}; it and the certificates after it were left out of the analysis",
            )
            certs, kept = certs[:index], kept[:index]
            break
    return ServedChain(
        host=target.host,
        port=target.port,
        servername=target.sni,
        address=hs.address,
        tls_version=hs.tls_version,
        cipher=hs.cipher,
        der=kept,
        certificates=certs,
        sent_count=len(hs.der),
        damaged=damaged,
    )


def _error(
    target: Target, kind: type[TLSFetchError], failures: Mapping[str, Failure]
) -> TLSFetchError:
    """One error naming each distinct failure once, with the versions it happened on."""
    groups: dict[tuple[str, str], list[str]] = {}
    for version, failure in failures.items():
        groups.setdefault((failure.what, failure.hint), []).append(version)
    parts = [what.replace("{v}", "/".join(vs)) for (what, _), vs in groups.items()]
    hints = dict.fromkeys(hint.replace("{v}", "/".join(vs)) for (_, hint), vs in groups.items())
    hint = "; ".join(h for h in hints if h)
    message = f"{target.label}: {'; '.join(parts)}" + (f" ({hint})" if hint else "")
    return kind(message, target=target.label)
