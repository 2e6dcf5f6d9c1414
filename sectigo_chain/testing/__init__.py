"""Public test kit: the lab PKI shaped like Sectigo's hierarchy (``lab``) and loopback TLS
servers (``tls_servers``). ``from sectigo_chain.testing import LabHierarchy`` keeps working.

``lab`` may import ``x509`` and ``errors`` only; ``tls_servers`` also ``tls``.
"""

from sectigo_chain.testing.lab import (
    LabCA,
    LabHierarchy,
    LabLeaf,
    default_lab,
    make_certificate,
    new_key,
)

__all__ = [
    "LabCA",
    "LabHierarchy",
    "LabLeaf",
    "default_lab",
    "make_certificate",
    "new_key",
]
