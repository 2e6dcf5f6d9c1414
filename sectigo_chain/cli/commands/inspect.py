"""``sectigo-chain inspect FILE...``: identify certificates and where they belong."""

from __future__ import annotations

import argparse

from sectigo_chain.cli.commands._common import (
    add_secret_options,
    emit_json,
    error_line,
    read_secret,
)

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["register", "run"]


def register(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add the ``inspect`` subcommand."""
    p = sub.add_parser(
        "inspect",
        parents=list(parents),
        help="identify certificates (PEM, DER, .cer, .p7b, .pfx) and the store each belongs in",
        description=(
            "For each certificate: the facts, its role in the Sectigo hierarchy, the Windows "
            "store it belongs in and, for a leaf, the R46/E46 cross-sign it needs."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="certificate files")
    add_secret_options(p, "PFX or private-key password")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Inspect every file; exit 2 if any could not be read."""
    from sectigo_chain.cli.main import OK, USAGE
    from sectigo_chain.errors import CertificateLoadError, InputError
    from sectigo_chain.x509.inspect import inspect_file

    try:
        password = read_secret(args.password_env, args.password_file, "PFX password")
    except InputError as exc:
        error_line("inspect", str(exc))
        return USAGE
    files: list[dict[str, Any]] = []
    code = OK
    for path in args.files:
        try:
            report = inspect_file(path, password)
        except CertificateLoadError as exc:
            error_line("inspect", str(exc))
            files.append({"path": path, "error": str(exc), "certificates": []})
            code = USAGE
            continue
        files.append(report.to_json())
        if not args.json:
            print(report)
    if args.json:
        emit_json({"files": files})
    return code
