"""Bounded memo tables for facts about certificates, keyed by object identity.

``x509.Certificate`` hashing re-encodes the DER; identity keys (checked against the stored
object, so a recycled ``id`` never returns a stale answer) keep repeated lookups cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from cryptography import x509

__all__ = ["CacheInfo", "CertMemo", "CertPairMemo"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class CacheInfo(NamedTuple):
    """Like ``functools.lru_cache``'s: hits (by identity, then in ``fn``'s own cache)."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class _IdentityMemo(Generic[_K, _V]):
    """A bounded dict keyed by the ``id`` of certificate objects; each entry keeps its objects
    alive (so no ``id`` is reused while cached); the oldest go first beyond ``maxsize``."""

    def __init__(self, fn: Callable[..., _V], maxsize: int) -> None:
        self._fn, self._maxsize = fn, maxsize
        self._cache: dict[_K, tuple[tuple[x509.Certificate, ...], _V]] = {}
        self._hits = self._misses = 0
        self.__doc__, self.__wrapped__ = fn.__doc__, fn

    def _compute(self, key: _K, certs: tuple[x509.Certificate, ...]) -> _V:
        self._misses += 1
        value: _V = self._fn(*certs)
        self._put(key, certs, value)
        return value

    def _put(self, key: _K, certs: tuple[x509.Certificate, ...], value: _V) -> None:
        cache = self._cache
        while len(cache) >= self._maxsize:
            try:
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                break
        cache[key] = (certs, value)

    def cache_info(self) -> CacheInfo:
        inner = getattr(self._fn, "cache_info", None)
        hits = self._hits + (inner().hits if inner is not None else 0)
        return CacheInfo(hits, self._misses, self._maxsize, len(self._cache))

    def cache_clear(self) -> None:
        """Forget every memoised fact (and clear ``fn``'s own cache, if it has one)."""
        self._cache.clear()
        self._hits = self._misses = 0
        clear = getattr(self._fn, "cache_clear", None)
        if clear is not None:
            clear()


class CertMemo(_IdentityMemo[int, _V]):
    """A bounded memo of one fact per certificate *object* (looked up by identity).

    A certificate is immutable, so a fact about one object never changes. Looking up by
    identity costs a dict lookup, where ``functools.lru_cache`` hashes and compares the whole
    DER (about as long as computing a SHA-256). ``fn`` may itself be an ``lru_cache``, so that
    equal certificates parsed twice share its facts.
    """

    def __init__(self, fn: Callable[[x509.Certificate], _V], maxsize: int = 4096) -> None:
        super().__init__(fn, maxsize)

    def __call__(self, cert: x509.Certificate) -> _V:
        hit = self._cache.get(id(cert))
        if hit is not None and hit[0][0] is cert:
            self._hits += 1
            return hit[1]
        return self._compute(id(cert), (cert,))


class CertPairMemo(_IdentityMemo[tuple[int, int], _V]):
    """:class:`CertMemo` for a fact about a pair of certificates (e.g. "A issued B")."""

    def __init__(
        self, fn: Callable[[x509.Certificate, x509.Certificate], _V], maxsize: int = 8192
    ) -> None:
        super().__init__(fn, maxsize)

    def record(self, first: x509.Certificate, second: x509.Certificate, value: _V) -> None:
        """Remember ``value`` for the pair (a fact established elsewhere, e.g. by a verifier
        that checked the same signature); the oldest go first beyond ``maxsize``."""
        self._put((id(first), id(second)), (first, second), value)

    def __call__(self, first: x509.Certificate, second: x509.Certificate) -> _V:
        key = (id(first), id(second))
        hit = self._cache.get(key)
        if hit is not None and hit[0][0] is first and hit[0][1] is second:
            self._hits += 1
            return hit[1]
        return self._compute(key, (first, second))
