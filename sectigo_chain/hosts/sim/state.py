"""Persisted simulated hosts: ``sim://SCENARIO?state=FILE`` (a rehearsal feature).

A plain ``sim://broken-r46`` host lives as long as the process (one fleet run, one Ansible
task): the next run starts again from the broken scenario. With ``?state=FILE`` the host's
whole model (certificate stores with their keys, sites, bindings, HTTP.sys entries and
cache, policy) is read from ``FILE`` when it exists (else built from the scenario) and written
back after every script that may change it, so a second run, in another process, finds the
host as the first one left it: "a second apply is a no-op" can be rehearsed end to end.

Concurrency: a host holds an exclusive lock on ``FILE.lock`` (``flock``, POSIX) from the
moment it is opened until :meth:`SimState.release` (the host's ``close``), so two processes
(two Ansible forks, two fleet shards) given the same file take turns, as two sessions on one
machine would; a writer never exposes a half-written file (a temporary file in the same
folder, flushed, fsync'd, then ``os.replace``'d).

The file holds the simulated host's private keys (the lab's, or the key of a PFX imported
during the rehearsal): it is created mode 0600; rehearse with lab material only. It also
records the scenario and the lab hierarchy it was made with; a file of another scenario or
another lab is refused (:class:`~sectigo_chain.errors.InputError`), never silently mixed.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.sim.model import HostModel, SimBinding, SimCert, SimSite, SslCertEntry
from sectigo_chain.x509.certs import thumbprint

__all__ = ["SimState", "parse_sim_target"]

FORMAT = "sectigo_chain.sim-state/1"
#: seconds a host waits for another process to release the same state file
LOCK_WAIT = 120.0
_CLASSES: dict[str, type[Any]] = {
    c.__name__: c for c in (HostModel, SimBinding, SimCert, SimSite, SslCertEntry)
}


def parse_sim_target(rest: str) -> tuple[str, str | None]:
    """``"broken-r46?state=/tmp/web01.json"`` -> ``("broken-r46", "/tmp/web01.json")``.

    The query takes one parameter, ``state`` (a path; relative to the current folder);
    anything else is an :class:`InputError`."""
    name, sep, query = rest.partition("?")
    name = name.strip("/")
    if not sep:
        return name, None
    params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(params) - {"state"})
    if unknown or len(params.get("state", [])) != 1 or not params["state"][0]:
        raise InputError(
            f"sim://{name}?{query}: the only parameter of a sim:// target is state=FILE "
            "(one non-empty path), e.g. sim://broken-r46?state=web01.json"
        )
    return name, params["state"][0]


def lab_id(certificates: list[x509.Certificate]) -> str:
    """A short fingerprint of a lab hierarchy (its catalog's certificates)."""
    digest = hashlib.sha256("".join(sorted(thumbprint(c) for c in certificates)).encode())
    return digest.hexdigest()[:16]


class SimState:
    """The state file of one persisted simulated host (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], scenario: str, lab: str) -> None:
        self.path = Path(path).absolute()
        self.scenario = scenario
        self.lab = lab
        self._lock: IO[bytes] | None = None

    def acquire(self, wait: float = LOCK_WAIT) -> None:
        """Take the exclusive lock (waits up to ``wait`` s for another holder)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows controllers
            raise InputError(
                "sim:// state files need a POSIX controller (flock); rehearse without ?state="
            ) from None
        if self._lock is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(f"{self.path}.lock", "ab")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise InputError(
                f"cannot open the sim:// state file {self.path}: {exc.strerror}; check the path"
            ) from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise InputError(
                        f"the sim:// state file {self.path} stayed locked for {wait:g} s "
                        "(another run holds this simulated host); try again later"
                    ) from None
                time.sleep(0.05)
        self._lock = handle

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        handle, self._lock = self._lock, None
        if handle is not None:
            handle.close()  # closing the descriptor releases the flock

    def load(self) -> HostModel | None:
        """The saved model, or None when the file does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(
                f"cannot read the sim:// state file {self.path}: {exc.strerror}"
            ) from None
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise ValueError("not a state file")
        except (ValueError, AttributeError):
            raise InputError(
                f"{self.path} is not a sim:// state file ({FORMAT}); delete it to start again "
                "from the scenario"
            ) from None
        if doc.get("scenario") != self.scenario:
            raise InputError(
                f"the sim:// state file {self.path} holds a sim://{doc.get('scenario')} host, "
                f"not sim://{self.scenario}; use another file, or delete it to start again"
            )
        if doc.get("lab") != self.lab:
            raise InputError(
                f"the sim:// state file {self.path} was written with another lab hierarchy; "
                "delete it to start again from the scenario"
            )
        try:
            model = _decode(doc["model"])
        except (KeyError, ValueError, TypeError):
            model = None
        if not isinstance(model, HostModel):
            raise InputError(
                f"the sim:// state file {self.path} is damaged; delete it to start again from "
                "the scenario"
            )
        return model

    def save(self, model: HostModel) -> None:
        """Write the model atomically (temporary file, fsync, rename), mode 0600."""
        doc = {"format": FORMAT, "scenario": self.scenario, "lab": self.lab}
        doc["model"] = _encode(model)
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp creates it 0600
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ----------------------------------------------------------------------------- JSON form


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):  # e.g. the PFX files of a Central Certificate Store share
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, x509.Certificate):
        return {"$cert": base64.b64encode(value.public_bytes(serialization.Encoding.DER)).decode()}
    if isinstance(value, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        pem = value.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"$key": pem.decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in _CLASSES:
            raise TypeError(f"cannot save a {name} in a sim:// state file")
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$obj": name, "fields": fields}
    if isinstance(value, dict):
        return {"$dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"$set": sorted((_encode(v) for v in value), key=json.dumps)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    raise TypeError(f"cannot save a {type(value).__name__} in a sim:// state file")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    if "$cert" in value:
        return x509.load_der_x509_certificate(base64.b64decode(value["$cert"]))
    if "$key" in value:
        return serialization.load_pem_private_key(value["$key"].encode("ascii"), password=None)
    if "$obj" in value:
        cls = _CLASSES[value["$obj"]]
        known = {f.name for f in dataclasses.fields(cls)}
        # A field added to the model since the file was written keeps its default.
        return cls(**{k: _decode(v) for k, v in value["fields"].items() if k in known})
    if "$dict" in value:
        return {_hashable(_decode(k)): _decode(v) for k, v in value["$dict"]}
    if "$set" in value:
        return {_hashable(_decode(v)) for v in value["$set"]}
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    raise ValueError("unknown value in a sim:// state file")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
