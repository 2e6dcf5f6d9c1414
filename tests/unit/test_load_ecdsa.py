"""Loading an ECDSA-signed certificate checks every lazily parsed field without building
cryptography's ``ECDSA`` parameters object (whose first use imports cryptography's whole OpenSSL
backend, 4-5 ms of ``check``'s start-up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.x509.load import _ECDSA_OIDS

ROOT = Path(__file__).resolve().parents[2]


def test_what_is_skipped_holds_nothing_beyond_the_hash(lab: LabHierarchy) -> None:
    """cryptography's parameters of an ECDSA signature are ``ECDSA(hash)``, the hash the load
    reads anyway; an RSA signature's are still read (PSS parameters can be damaged)."""
    ecc, rsa = lab.self_signed_root("ECC").cert, lab.self_signed_root("RSA").cert
    assert ecc.signature_algorithm_oid in _ECDSA_OIDS
    params = ecc.signature_algorithm_parameters
    assert isinstance(params, ec.ECDSA)
    assert ecc.signature_hash_algorithm is not None
    assert params.algorithm.name == ecc.signature_hash_algorithm.name
    assert rsa.signature_algorithm_oid not in _ECDSA_OIDS
    assert isinstance(rsa.signature_algorithm_parameters, padding.PKCS1v15)


def test_loading_an_ecdsa_signed_certificate_leaves_the_backend_unloaded(
    lab: LabHierarchy, tmp_path: Path
) -> None:
    pem = tmp_path / "ecc-root.pem"
    pem.write_bytes(lab.self_signed_root("ECC").cert.public_bytes(Encoding.PEM))
    code = (
        "import sys\n"
        "from sectigo_chain.x509.load import load_file\n"
        f"loaded = load_file({str(pem)!r})\n"
        "assert len(loaded.certificates) == 1\n"
        "print('cryptography.hazmat.backends.openssl.backend' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
