"""Standalone scripts: a rendered template as one ``.ps1`` an operator can read and run.

The script is ASCII only (Windows PowerShell 5.1 reads a BOM-less file in the ANSI code page)
and holds exactly three kinds of generated text, none of which can become code:

* comment lines describing the parameters: JSON with every non-ASCII and control character
  escaped, so a value can never end the comment line;
* the payload as a single-quoted base64 literal (its alphabet has no quote characters);
* fixed prompt texts and field names, quoted with :func:`~sectigo_chain.templates.render.ps_quote`.

The template text follows verbatim inside ``& { ... } -Payload $SectigoPayload``. After it,
the script throws when the template reported ``ok = false``, so several standalone scripts
concatenated (a plan) stop at the first failure.

Secrets are not embedded unless asked: by default each secret field is left ``null`` in the
payload and the script asks for it on the host (``Read-Host -AsSecureString`` for a password,
a file path for PFX bytes) before running the template.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sectigo_chain.errors import TemplateError
from sectigo_chain.templates.params import TEMPLATE_SPECS
from sectigo_chain.templates.render import RenderedScript, encode_payload, ps_quote

__all__ = ["to_standalone", "to_standalone_plan"]

_LONG = 120


def _comment_value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=True)
    if len(text) > _LONG:
        text = f"{text[: _LONG - 40]}... ({len(text)} characters)"
    return text


def _header(script: RenderedScript, embed_secrets: bool, position: str) -> list[str]:
    if script.read_only:
        effect = "read-only: changes nothing"
    else:
        effect = "changes the host; re-checks state first, so running it twice is safe"
    lines = [
        f"# ---- sectigo_chain template {script.name}{position} ({effect})",
        "# Parameters (secrets shown as **********):",
    ]
    for key, value in sorted(script.masked_params().items()):
        lines.append(f"#   {key} = {_comment_value(value)}")
    if script.secret_fields and embed_secrets:
        lines.append(
            "# WARNING: this file CONTAINS SECRETS (" + ", ".join(sorted(script.secret_fields))
        )
        lines[-1] += "). Keep it private and delete it after use."
    elif script.secret_fields:
        lines.append("# Secrets are not in this file: the script asks for them when it runs.")
    return lines


def _secret_prompts(script: RenderedScript) -> list[str]:
    prompts = TEMPLATE_SPECS[script.name].secret_prompts
    lines = [
        "$SectigoParams = ConvertFrom-Json -InputObject ([System.Text.Encoding]::UTF8.GetString("
        "[System.Convert]::FromBase64String($SectigoPayload)))",
    ]
    for field_name, kind, prompt in prompts:
        target = f"$SectigoParams.PSObject.Properties[{ps_quote(field_name)}].Value"
        if kind == "password":
            lines += [
                f"$SectigoSecure = Read-Host -AsSecureString -Prompt {ps_quote(prompt)}",
                "$SectigoBstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR("
                "$SectigoSecure)",
                "try {",
                f"    {target} = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR("
                "$SectigoBstr)",
                "} finally {",
                "    [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($SectigoBstr)",
                "}",
            ]
        else:
            lines += [
                f"$SectigoPath = Read-Host -Prompt {ps_quote(prompt)}",
                "$SectigoBytes = [System.IO.File]::ReadAllBytes("
                "(Resolve-Path -LiteralPath $SectigoPath).ProviderPath)",
                f"{target} = [System.Convert]::ToBase64String($SectigoBytes)",
            ]
    lines.append(
        "$SectigoPayload = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes("
        "(ConvertTo-Json -InputObject $SectigoParams -Depth 10 -Compress)))"
    )
    lines.append("$SectigoParams = $null")
    return lines


def _block(script: RenderedScript, embed_secrets: bool, position: str = "") -> list[str]:
    if not embed_secrets and not script.secret_fields and script.holds_secrets:
        # An apply_plan whose actions carry secrets: they cannot be asked for on the host.
        raise TemplateError(
            f"{script.name} carries secrets inside its actions' payloads: render the actions "
            "one by one (each asks for its secrets on the host), or embed the secrets"
        )
    values = script.decoded_params()
    prompt = bool(script.secret_fields) and not embed_secrets
    if prompt:
        values = {key: (None if key in script.secret_fields else v) for key, v in values.items()}
    payload = encode_payload(values)
    lines = _header(script, embed_secrets, position)
    lines.append(f"$SectigoPayload = {ps_quote(payload)}")
    if prompt:
        lines += _secret_prompts(script)
    lines.append("$SectigoOutput = & {")
    lines += script.text.rstrip("\n").split("\n")
    lines += [
        "} -Payload $SectigoPayload",
        "$SectigoPayload = $null",
        "$SectigoOutput",
        "$SectigoDocument = $SectigoOutput | Select-Object -Last 1 | ConvertFrom-Json",
        "if ($SectigoDocument.ok -ne $true) {",
        "    throw "
        + ps_quote(f"sectigo_chain: template {script.name} reported ok=false; stopping."),
        "}",
    ]
    return lines


_PREAMBLE = [
    "# sectigo_chain standalone script, generated by `sectigo-chain render`. Read it first.",
    "# Run it on the server in an elevated Windows PowerShell 5.1 (or later) session:",
    "#   powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\\this-script.ps1",
    "# Each template writes one JSON document {ok, changed, data, error}; the script stops",
    "# with an error at the first one that reports ok = false.",
    "# What a template receives is only $SectigoPayload (base64 of UTF-8 JSON); to read one:",
    "#   [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($SectigoPayload))",
]


def _finish(lines: list[str]) -> str:
    text = "\n".join(lines) + "\n"
    if not text.isascii():  # pragma: no cover - guarded by construction and by tests
        raise AssertionError("a standalone script must be ASCII")
    return text


def to_standalone(script: RenderedScript, *, embed_secrets: bool = False) -> str:
    """One rendered template as a self-contained, ASCII-only ``.ps1``.

    Without ``embed_secrets`` the secret fields are left out and asked for on the host.
    """
    return _finish([*_PREAMBLE, "", *_block(script, embed_secrets)])


def to_standalone_plan(scripts: Sequence[RenderedScript], *, embed_secrets: bool = False) -> str:
    """Several rendered templates as one script that runs them in order, stopping at the first
    failure."""
    lines = list(_PREAMBLE)
    total = len(scripts)
    for index, script in enumerate(scripts, start=1):
        lines.append("")
        lines += _block(script, embed_secrets, f" (step {index} of {total})")
    return _finish(lines)
