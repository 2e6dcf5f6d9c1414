"""Read how a PKCS#12 (.pfx/.p12) file is protected, without decrypting it.

Windows Server 2016 before build 1709 (and older) cannot import PFX files whose bags are
encrypted with PBES2/AES (OpenSSL 3's default); 3DES or RC2 with a SHA-1 MAC ("legacy") imports
everywhere. The PKCS#12 structure is parsed with asn1crypto; cryptography does not expose it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from asn1crypto import cms, keys, pkcs12
from pydantic import BaseModel, ConfigDict

__all__ = ["PfxProtection", "pfx_kdf_costs", "pkcs8_kdf_costs", "read_pfx_protection"]


class PfxProtection(BaseModel):
    """How a PFX is protected. ``kind`` is the verdict that matters for old Windows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["aes", "legacy", "mixed", "none", "unknown"]
    mac_algorithm: str | None
    algorithms: tuple[str, ...]
    iterations: tuple[int, ...] = ()

    @property
    def legacy_compatible(self) -> bool:
        """True if Windows Server 2016 < 1709 / 2012 R2 can import it."""
        return self.kind in ("legacy", "none")

    def __str__(self) -> str:
        algs = ", ".join(self.algorithms) or "no encryption"
        mac = self.mac_algorithm or "no MAC"
        return f"{self.kind} ({algs}; MAC {mac})"


def _alg_name(alg: cms.EncryptionAlgorithm) -> tuple[str, int | None]:
    name = str(alg["algorithm"].native)
    iterations: int | None = None
    try:
        if name == "pbes2":
            cipher = str(alg["parameters"]["encryption_scheme"]["algorithm"].native)
            kdf = alg["parameters"]["key_derivation_func"]
            iterations = int(kdf["parameters"]["iteration_count"].native)
            return f"pbes2/{cipher}", iterations
        iterations = int(alg["parameters"]["iterations"].native)
    except (KeyError, TypeError, ValueError):
        pass
    return name, iterations


def read_pfx_protection(data: bytes) -> PfxProtection:
    """Classify the encryption of every bag and the MAC of a PFX (no password needed)."""
    algorithms: list[str] = []
    iterations: list[int] = []
    try:
        pfx = pkcs12.Pfx.load(data)
        mac_data = pfx["mac_data"]
        mac = None
        if mac_data.native is not None:
            mac = str(mac_data["mac"]["digest_algorithm"]["algorithm"].native)
        for content_info in pfx.authenticated_safe:
            ctype = content_info["content_type"].native
            if ctype == "encrypted_data":
                alg = content_info["content"]["encrypted_content_info"][
                    "content_encryption_algorithm"
                ]
                name, it = _alg_name(alg)
                algorithms.append(name)
                if it:
                    iterations.append(it)
            elif ctype == "data":
                safe = pkcs12.SafeContents.load(content_info["content"].native)
                for bag in safe:
                    if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                        name, it = _alg_name(bag["bag_value"]["encryption_algorithm"])
                        algorithms.append(name)
                        if it:
                            iterations.append(it)
    except (ValueError, TypeError, KeyError):
        return PfxProtection(kind="unknown", mac_algorithm=None, algorithms=())
    uniq = tuple(dict.fromkeys(algorithms))
    aes = [a for a in uniq if a.startswith("pbes2")]
    if not uniq:
        kind: Literal["aes", "legacy", "mixed", "none", "unknown"] = "none"
    elif len(aes) == len(uniq):
        kind = "aes"
    elif aes:
        kind = "mixed"
    else:
        kind = "legacy"
    if kind in ("legacy", "none") and mac not in (None, "sha1"):
        kind = "mixed"  # a SHA-256 MAC is refused by the same old builds
    return PfxProtection(
        kind=kind, mac_algorithm=mac, algorithms=uniq, iterations=tuple(dict.fromkeys(iterations))
    )


def _kdf_cost(alg: cms.EncryptionAlgorithm) -> tuple[int, int]:
    """``(iterations, scrypt cost)`` an encryption algorithm asks for (0 when absent)."""
    iterations = scrypt = 0
    try:
        name = alg["algorithm"].native
        params = alg["parameters"]
        if name == "pbes2":
            kdf = params["key_derivation_func"]
            kdf_params = kdf["parameters"]
            if kdf["algorithm"].native == "scrypt":
                scrypt = int(kdf_params["cost_parameter"].native)
            else:
                iterations = int(kdf_params["iteration_count"].native)
        elif params.native is not None and "iterations" in params:
            iterations = int(params["iterations"].native)
    except (KeyError, TypeError, ValueError):
        pass
    return iterations, scrypt


def _max(costs: list[tuple[int, int]]) -> tuple[int, int]:
    return max((c[0] for c in costs), default=0), max((c[1] for c in costs), default=0)


def pfx_kdf_costs(data: bytes) -> tuple[int, int]:
    """The largest key-derivation ``(iterations, scrypt cost)`` a PFX asks for (its MAC, its
    encrypted contents, its shrouded key bags), read without deriving anything.

    The key bags inside encrypted contents are only readable after decryption; the outer
    encryption's count is checked here, which bounds reaching them.
    """
    costs: list[tuple[int, int]] = []
    try:
        pfx = pkcs12.Pfx.load(data)
        mac_data = pfx["mac_data"]
        if mac_data.native is not None:
            costs.append((int(mac_data["iterations"].native or 1), 0))
        for content_info in pfx.authenticated_safe:
            ctype = content_info["content_type"].native
            if ctype == "encrypted_data":
                costs.append(
                    _kdf_cost(
                        content_info["content"]["encrypted_content_info"][
                            "content_encryption_algorithm"
                        ]
                    )
                )
            elif ctype == "data":
                for bag in pkcs12.SafeContents.load(content_info["content"].native):
                    if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                        costs.append(_kdf_cost(bag["bag_value"]["encryption_algorithm"]))
    except (ValueError, TypeError, KeyError):
        pass  # a damaged PFX: cryptography's parser reports it
    return _max(costs)


_PEM_BODY = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END", re.DOTALL)


def pkcs8_kdf_costs(pem: bytes) -> tuple[int, int]:
    """The key-derivation ``(iterations, scrypt cost)`` of one PEM ``ENCRYPTED PRIVATE KEY``
    block (PKCS#8), read without deriving anything; ``(0, 0)`` if unreadable."""
    match = _PEM_BODY.search(pem)
    if match is None:
        return 0, 0
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        info = keys.EncryptedPrivateKeyInfo.load(der)
        return _kdf_cost(info["encryption_algorithm"])
    except (binascii.Error, ValueError, TypeError, KeyError):
        return 0, 0
