"""Public test kit: the lab PKI shaped like Sectigo's hierarchy (``lab``), loopback TLS
servers (``tls_servers``) and a loopback WinRM endpoint with a simulated host behind it
(``winrm``, needs the ``testing`` extra: psrpcore). ``from sectigo_chain.testing import
LabHierarchy`` keeps working.

``lab`` may import ``x509`` and ``errors`` only; ``tls_servers`` also ``tls``; ``winrm`` sits
above ``hosts`` (it imports ``hosts.sim`` and ``templates``) and is not imported here.
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
