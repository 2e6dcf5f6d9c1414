"""Certificate paths, the Windows served-chain prediction, and (re-exported) chain findings.

:func:`build_paths` finds every path from a leaf through a pool of certificates to a trust
anchor: issuers are matched by name and signature (memoised), basicConstraints and path length
limits are honoured, a key never appears twice in a path (so cross-signing loops end), and
depth is bounded.

:func:`predict_windows_chain` models what IIS/SChannel serves given the machine's ``Root``,
``CA`` and ``My`` stores, after DESIGN.md section 1 *(reported behaviour, not observed on
Windows here)*: every trusted path is built, the policy picks one (by default
:func:`shortest_trusted_path`: fewest certificates wins, Microsoft KB 2831004), and the chain is
served without its trust anchor (KB 954755: "the complete certificate chain, except for the root
certificate, is sent"). The policy is a plain function, so a different model of the chain
engine can be swapped in. :func:`analyze` and friends live in :mod:`sectigo_chain.x509.analyze`
and :mod:`sectigo_chain.x509.findings` and are re-exported here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from cryptography import x509

from sectigo_chain.x509._record import Frozen, field
from sectigo_chain.x509.analyze import analyze
from sectigo_chain.x509.certs import common_name
from sectigo_chain.x509.findings import (
    FINDING_CODES,
    ChainAnalysis,
    Finding,
    Severity,
    basic_constraints,
    compare_versions,
    fingerprint,
    hostname_matches,
    issued_by,
    self_signed,
    spki,
    utc,
    valid_at,
)

__all__ = [
    "FINDING_CODES",
    "WINDOWS_TIE_RULE",
    "CertPath",
    "ChainAnalysis",
    "ChainPolicy",
    "Competitor",
    "Finding",
    "Severity",
    "WindowsChainPrediction",
    "analyze",
    "build_paths",
    "compare_versions",
    "competing_paths",
    "hostname_matches",
    "predict_windows_chain",
    "shortest_trusted_path",
]

#: Partial paths explored per :func:`build_paths` call before it stops (a pathological pool of
#: CAs that all cross-sign each other); the shortest paths are always found first.
MAX_PARTIAL_PATHS = 4096

_KeyId = tuple[x509.Name, bytes]


def _key_id(cert: x509.Certificate) -> _KeyId:
    return cert.subject, spki(cert)


def _cn(cert: x509.Certificate) -> str:
    return common_name(cert.subject)


class CertPath(Frozen):
    """One path, leaf first. ``anchor`` is the trusted certificate that ends it: normally
    ``certificates[-1]``; when the leaf itself has the subject and key of an anchor, the path is
    just ``(leaf,)`` and ``anchor`` is that anchor."""

    certificates: tuple[x509.Certificate, ...]
    anchor: x509.Certificate

    @property
    def depth(self) -> int:
        """Number of certificates, leaf and anchor included."""
        return len(self.certificates)

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def sha256s(self) -> tuple[str, ...]:
        """SHA-256 (upper-case hex) of each certificate, leaf first."""
        return tuple(fingerprint(c) for c in self.certificates)

    @property
    def names(self) -> tuple[str, ...]:
        """Subject common names, leaf first."""
        return tuple(_cn(c) for c in self.certificates)

    def __str__(self) -> str:
        return " -> ".join(self.names)


def _may_issue(issuer: x509.Certificate, below: tuple[x509.Certificate, ...]) -> bool:
    """basicConstraints: a CA (or a v1 certificate without the extension), and its path length
    limit covers the intermediate CAs below it (self-issued ones do not count)."""
    bc = basic_constraints(issuer)
    if bc is None:
        return True
    if not bc.ca:
        return False
    if bc.path_length is None:
        return True
    return sum(1 for c in below[1:] if c.subject != c.issuer) <= bc.path_length


def build_paths(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    max_depth: int = 8,
    at: datetime | None = None,
) -> list[CertPath]:
    """Every path ``leaf -> ... -> anchor`` through ``pool``, shortest first (ties by SHA-256s).

    An anchor is a certificate in ``anchors``; a pool certificate with the same subject and key
    as an anchor also ends a path there (the path then ends with the anchor). A path stops at
    the first anchor it meets. ``max_depth`` counts certificates, leaf and anchor included. With
    ``at``, issuers (pool and anchors) not valid at that time are skipped; the leaf's own dates
    are the caller's business.
    """
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    issuers = _IssuerIndex(pool, anchors, leaf, utc(at) if at is not None else None)
    itself = issuers.anchor_for(leaf)
    if itself is not None:
        return [CertPath((leaf,), itself)]
    found: dict[tuple[str, ...], CertPath] = {}
    frontier: list[tuple[x509.Certificate, ...]] = [(leaf,)]
    explored = 0
    while frontier and explored < MAX_PARTIAL_PATHS:
        next_frontier: list[tuple[x509.Certificate, ...]] = []
        for path in frontier:
            explored += 1
            top = path[-1]
            if len(path) >= max_depth or self_signed(top):
                continue
            keys = {_key_id(c) for c in path}
            for cand, is_anchor in issuers.named(top.issuer):
                if _key_id(cand) in keys or not _may_issue(cand, path):
                    continue
                if not issued_by(top, cand):
                    continue
                if is_anchor:
                    new = CertPath((*path, cand), cand)
                    found.setdefault(new.sha256s, new)
                    continue
                twin = issuers.anchor_for(cand)
                if twin is not None:
                    new = CertPath((*path, twin), twin)
                    found.setdefault(new.sha256s, new)
                next_frontier.append((*path, cand))
        frontier = next_frontier
    return sorted(found.values(), key=lambda p: (p.depth, p.sha256s))


class _IssuerIndex:
    """Pool and anchors by subject. A bucket is cleaned only when first asked for (duplicates
    merged with the anchor flag winning, the leaf and certificates invalid at ``when`` dropped,
    sorted by SHA-256), so large Root stores cost one dictionary insert per certificate."""

    def __init__(
        self,
        pool: Sequence[x509.Certificate],
        anchors: Sequence[x509.Certificate],
        leaf: x509.Certificate,
        when: datetime | None,
    ) -> None:
        self._raw: dict[x509.Name, list[tuple[x509.Certificate, bool]]] = {}
        for is_anchor, certs in ((True, anchors), (False, pool)):
            for cert in certs:
                self._raw.setdefault(cert.subject, []).append((cert, is_anchor))
        self._clean: dict[x509.Name, list[tuple[x509.Certificate, bool]]] = {}
        self._leaf = leaf
        self._when = when

    def named(self, name: x509.Name) -> list[tuple[x509.Certificate, bool]]:
        """(certificate, is_anchor) for every usable certificate with this subject."""
        bucket = self._clean.get(name)
        if bucket is None:
            merged: dict[x509.Certificate, bool] = {}
            for cert, is_anchor in self._raw.get(name, ()):
                merged[cert] = merged.get(cert, False) or is_anchor
            bucket = sorted(
                (
                    (cert, is_anchor)
                    for cert, is_anchor in merged.items()
                    if cert != self._leaf and (self._when is None or valid_at(cert, self._when))
                ),
                key=lambda item: fingerprint(item[0]),
            )
            self._clean[name] = bucket
        return bucket

    def anchor_for(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The anchor that ``cert`` is (itself, or an anchor with its subject and key)."""
        for other, is_anchor in self._raw.get(cert.subject, ()):
            if is_anchor and other == cert:
                return other
        key = spki(cert)
        for other, is_anchor in self.named(cert.subject):
            if is_anchor and spki(other) == key:
                return other
        return None


ChainPolicy = Callable[[Sequence[CertPath]], CertPath | None]
"""A chain-selection policy: picks one of the trusted paths (or None)."""

#: The rule :func:`shortest_trusted_path` applies, with its sources; every prediction made with
#: it states it (:attr:`WindowsChainPrediction.tie_rule`). See docs/windows-facts.md.
WINDOWS_TIE_RULE = (
    "fewest certificates wins (Microsoft KB 2831004, documented); among paths of equal length "
    "the anchor with the latest notAfter, then the path whose certificates were issued last "
    "(newer notBefore: reported by users, win-acme #1918, Posh-ACME #383, the 2021 DST Root CA "
    "X3 case; not documented by Microsoft), then the lowest SHA-256s (this model's own, to be "
    "deterministic)"
)


def shortest_trusted_path(paths: Sequence[CertPath]) -> CertPath | None:
    """The default policy, as reported for Windows (KB 2831004): fewest certificates wins;
    ties go to the anchor with the latest notAfter, then to the path whose certificates were
    issued last (newer notBefore, as reported for duplicate intermediates: field reports,
    win-acme #1918, Posh-ACME #383), then to the lowest SHA-256s (deterministic).
    """
    if not paths:
        return None
    return min(
        paths,
        key=lambda p: (
            p.depth,
            -p.anchor.not_valid_after_utc.timestamp(),
            tuple(-c.not_valid_before_utc.timestamp() for c in p.certificates[1:]),
            p.sha256s,
        ),
    )


class WindowsChainPrediction(Frozen):
    """What Windows would build for a leaf and what IIS would send.

    ``built`` is the chosen path (leaf .. anchor) or, when nothing is trusted, the partial
    chain Windows could still assemble. ``served`` is ``built`` without its last certificate
    when that is the trust anchor or a self-signed root (SChannel does not send the root; a
    cross-certificate misplaced in ``Root`` is an anchor too, so it is not sent either). The
    leaf is always served. ``paths`` holds every trusted path the policy chose from.
    """

    built: tuple[x509.Certificate, ...]
    served: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    trusted: bool
    reason: str
    paths: tuple[CertPath, ...] = field(default=(), repr=False)
    tie_rule: str = ""
    """The rule the policy breaks ties with, and its source (empty for an unknown policy)."""

    @property
    def served_sha256s(self) -> tuple[str, ...]:
        return tuple(fingerprint(c) for c in self.served)

    @property
    def built_sha256s(self) -> tuple[str, ...]:
        return tuple(fingerprint(c) for c in self.built)

    def __str__(self) -> str:
        served = " -> ".join(_cn(c) for c in self.served)
        return f"served {served} ({'trusted' if self.trusted else 'NOT trusted'}): {self.reason}"


def _partial_chain(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], at: datetime, max_depth: int
) -> tuple[x509.Certificate, ...]:
    """Greedy walk up from the leaf when no trusted path exists: at each step the issuer that
    is valid at ``at``, then has the latest notAfter, then the lowest SHA-256."""
    chain = [leaf]
    keys = {_key_id(leaf)}
    while len(chain) < max_depth and not self_signed(chain[-1]):
        top = chain[-1]
        issuers = [
            c
            for c in pool
            if c.subject == top.issuer
            and _key_id(c) not in keys
            and _may_issue(c, tuple(chain))
            and issued_by(top, c)
        ]
        if not issuers:
            break
        best = min(
            issuers,
            key=lambda c: (not valid_at(c, at), -c.not_valid_after_utc.timestamp(), fingerprint(c)),
        )
        chain.append(best)
        keys.add(_key_id(best))
    return tuple(chain)


def predict_windows_chain(
    leaf: x509.Certificate,
    *,
    root: Sequence[x509.Certificate],
    ca: Sequence[x509.Certificate],
    my: Sequence[x509.Certificate] = (),
    at: datetime,
    policy: ChainPolicy = shortest_trusted_path,
    disallowed: Sequence[x509.Certificate] = (),
    max_depth: int = 8,
) -> WindowsChainPrediction:
    """The chain IIS would serve for ``leaf`` given the machine's stores (a model, see the
    module docstring). Anchors are the certificates in ``Root``; ``CA`` and ``My`` supply
    intermediates. Certificates in ``disallowed`` are never used. Pure and memoised."""
    when = utc(at)
    banned = set(disallowed)
    anchors = [c for c in root if c not in banned] if banned else list(root)
    pool = [c for c in [*ca, *my] if c not in banned] if banned else [*ca, *my]
    if leaf in banned:
        return WindowsChainPrediction(
            (leaf,), (leaf,), None, False, "the certificate itself is in Disallowed"
        )
    paths = build_paths(leaf, pool, anchors, max_depth=max_depth, at=when)
    chosen = policy(paths)
    if chosen is not None:
        built = chosen.certificates
        served = built[:-1] if len(built) > 1 else built
        anchor = _cn(chosen.anchor)
        if not self_signed(chosen.anchor):
            anchor += f" (issued by {common_name(chosen.anchor.issuer)}: not a root, yet in Root)"
        reason = (
            f"{len(paths)} trusted path{'s' if len(paths) != 1 else ''}; "
            f"{getattr(policy, '__name__', 'the policy')} chose {chosen.depth} certificates "
            f"anchored at {anchor}, which is not sent"
        )
        rest = [str(p.depth) for p in paths if p is not chosen]
        if rest:
            reason += f" (other paths: {', '.join(rest)} certificates)"
        tie_rule = WINDOWS_TIE_RULE if policy is shortest_trusted_path else ""
        if tie_rule and any(_served_differs(p, chosen) for p in _ties(paths, chosen)):
            reason += "; a tie between paths of that length was broken by the tie rule"
        return WindowsChainPrediction(
            built, served, chosen.anchor, True, reason, tuple(paths), tie_rule
        )
    built = _partial_chain(leaf, [*pool, *anchors], when, max_depth)
    top = built[-1]
    served = built[:-1] if len(built) > 1 and self_signed(top) else built
    if any(not valid_at(c, when) for c in built[1:]):
        why = "a certificate on the best chain is not valid at that time"
    elif self_signed(top):
        why = f"the chain ends at the self-signed {_cn(top)}, which is not in Root"
    else:
        why = f"the issuer of {_cn(top)} ({common_name(top.issuer)}) is in no store"
    return WindowsChainPrediction(
        built, served, None, False, f"no trusted path: {why}; Windows serves what it built"
    )


def _ties(paths: Sequence[CertPath], chosen: CertPath) -> list[CertPath]:
    return [p for p in paths if p is not chosen and p.depth == chosen.depth]


def _served_differs(a: CertPath, b: CertPath) -> bool:
    """Whether the two paths make Windows send different certificates (the anchor is not sent)."""
    return a.certificates[:-1] != b.certificates[:-1]


class Competitor(Frozen):
    """A path that wins instead of today's choice: on the tie rule alone (``kind="tie"``: it has
    the chosen path's length, so only the tie rule keeps it out, or puts it in), or once a
    certificate on the chosen path expires (``kind="after_expiry"``, from ``when`` on)."""

    kind: str
    path: CertPath
    chosen: CertPath
    when: datetime | None = None
    expiring: x509.Certificate | None = None

    @property
    def differing(self) -> tuple[x509.Certificate, ...]:
        """The certificates of the competing path that the chosen path does not hold."""
        return tuple(c for c in self.path.certificates if c not in self.chosen.certificates)

    def __str__(self) -> str:
        names = ", ".join(
            f"{_cn(c)} (issued {c.not_valid_before_utc:%Y-%m-%d}, by {common_name(c.issuer)})"
            for c in self.differing
        )
        if self.kind == "tie":
            return (
                f"a path of the same length through {names} competes with the one Windows "
                "builds: only the tie rule decides between them"
            )
        assert self.expiring is not None
        return (
            f"when {_cn(self.expiring)} (issued by {common_name(self.expiring.issuer)}) expires "
            f"on {self.expiring.not_valid_after_utc:%Y-%m-%d}, Windows switches to the path "
            f"through {names}"
        )


def competing_paths(
    leaf: x509.Certificate,
    *,
    root: Sequence[x509.Certificate],
    ca: Sequence[x509.Certificate],
    my: Sequence[x509.Certificate] = (),
    at: datetime,
    until: datetime | None = None,
    disallowed: Sequence[x509.Certificate] = (),
) -> list[Competitor]:
    """Paths that win, or would win, over the one :func:`predict_windows_chain` chooses at
    ``at`` under :func:`shortest_trusted_path`: every path of the same length whose served
    certificates differ (decided only by :data:`WINDOWS_TIE_RULE`), and the first path that
    takes over when a certificate on the chosen path expires before ``until`` (default: the
    leaf's notAfter). Pure and memoised (the hosts of a farm ask the same question)."""
    return list(
        _competing(
            leaf, tuple(root), tuple(ca), tuple(my), utc(at),
            utc(until) if until is not None else None, tuple(disallowed),
        )
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _competing(
    leaf: x509.Certificate,
    root: tuple[x509.Certificate, ...],
    ca: tuple[x509.Certificate, ...],
    my: tuple[x509.Certificate, ...],
    when: datetime,
    until: datetime | None,
    disallowed: tuple[x509.Certificate, ...],
) -> tuple[Competitor, ...]:
    now = predict_windows_chain(leaf, root=root, ca=ca, my=my, at=when, disallowed=disallowed)
    if not now.trusted or not now.paths:
        return ()
    chosen = shortest_trusted_path(now.paths)
    assert chosen is not None
    out = [
        Competitor("tie", p, chosen) for p in _ties(now.paths, chosen) if _served_differs(p, chosen)
    ]
    end = until if until is not None else leaf.not_valid_after_utc
    expiries = sorted(
        {c.not_valid_after_utc: c for c in chosen.certificates[1:]}.items(),
        key=lambda item: item[0],
    )
    for instant, cert in expiries:
        if instant < when or instant >= end:
            continue
        later = instant + timedelta(seconds=1)
        then = predict_windows_chain(leaf, root=root, ca=ca, my=my, at=later, disallowed=disallowed)
        picked = shortest_trusted_path(then.paths) if then.trusted else None
        if picked is not None and _served_differs(picked, chosen):
            out.append(Competitor("after_expiry", picked, chosen, later, cert))
            break
    return tuple(out)
