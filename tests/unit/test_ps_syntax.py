"""PowerShell syntax checks of the templates and of rendered scripts, without Windows.

* Every template, and every standalone script rendered from it with ordinary and hostile
  values, parses with the tree-sitter-pwsh grammar with no ERROR or MISSING node and passes
  ``ps_lint`` (test_ps_lint.py); a hostile value leaves the syntax tree's shape unchanged.
* Each template has the contract's shape (one ``$Payload`` parameter, preferences, one result
  written last), shared regions are identical, read-only templates change nothing, and the
  JSON keys written match the ``extra="forbid"`` models that parse them.

Limits (say so, do not hide): tree-sitter-pwsh is not PowerShell's parser. It does not treat
the curly single quotes as string delimiters (test_ps_lint.py pins that), which is why the
quoting property is checked against a port of PowerShell's tokenizer rule in test_ps_quote.py,
and why ps_lint rejects non-ASCII text outright.
"""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path

import pytest
import tree_sitter
from test_ps_lint import node_text, parse, ps_lint, walk

from sectigo_chain.templates import render as templates
from sectigo_chain.templates.params import TEMPLATE_SPECS
from sectigo_chain.templates.standalone import to_standalone

REPO = Path(__file__).resolve().parents[2]
PS_DIR = REPO / "ps_templates"


# ---------------------------------------------------------------------------------------------
# The templates themselves


def template_files() -> list[Path]:
    return sorted(PS_DIR.glob("*.ps1"))


def test_every_template_name_has_a_file_and_back() -> None:
    assert sorted(p.stem for p in template_files()) == sorted(templates.TEMPLATE_NAMES)
    assert set(templates.TEMPLATE_NAMES) == set(TEMPLATE_SPECS)


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_template_parses_and_passes_lint(name: str) -> None:
    text = templates.template_text(name)
    assert ps_lint(text) == []


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_template_contract_shape(name: str) -> None:
    text = templates.template_text(name)
    if TEMPLATE_SPECS[name].composite:
        # The entries are other templates' own code (test_compose.py): the shape is the
        # driver's, with the entries' blocks taken out. verify_host hands its own payload
        # (observe's parameters) to the observe entry.
        text = _without_entries(text)
        text = text.replace("Invoke-SectigoEntry -Name 'observe' -Encoded $Payload", "")
    tree = parse(text)
    # The param block is the script's own and takes exactly one mandatory string: $Payload.
    blocks = [n for n in tree.root_node.children if n.type == "param_block"]
    assert len(blocks) == 1
    assert "".join(node_text(blocks[0]).split()) == (
        "param([Parameter(Mandatory=$true)][string]$Payload)"
    )
    assert "$ErrorActionPreference = 'Stop'" in text
    assert "$ProgressPreference = 'SilentlyContinue'" in text
    # Exactly one place writes the result, as the last statement, after the try/catch.
    statements = next(n for n in walk(tree.root_node) if n.type == "statement_list").children
    assert node_text(statements[-1]).startswith("Write-SectigoResult -Ok ($null -eq $errorInfo)")
    assert text.count("\nWrite-SectigoResult ") == 1
    assert any(n.type == "try_statement" for n in statements)
    # The payload is read once, inside the try, and otherwise only cleared.
    assert text.count("Read-SectigoPayload -Encoded $Payload") == 1
    rest = text.replace("[string]$Payload)", "", 1).replace("-Encoded $Payload", "", 1)
    assert rest.replace("$Payload = $null", "").count("$Payload") == 0
    # No Write-Host / Write-Output in bodies: the JSON document is the only output.
    body = text.split("# ---- template body", 1)[1]
    assert "Write-Host" not in body
    assert "Write-Output" not in body


def _without_entries(text: str) -> str:
    """A composite template's text without its entries' script blocks."""
    head, rest = text.split("\n$SectigoEntries = @{}\n", 1)
    tail = rest[rest.index("\nfunction Invoke-SectigoEntry") :]
    return head + "\n$SectigoEntries = @{}\n" + tail


def _regions(text: str) -> dict[str, str]:
    pattern = re.compile(
        r"^#region sectigo_chain (\w+).*?^#endregion sectigo_chain \1$", re.M | re.S
    )
    return {m.group(1): m.group(0) for m in pattern.finditer(text)}


def test_shared_regions_are_kept_once_and_filled_in() -> None:
    """Shared code lives once in ps_templates/_regions/; each template names it with an empty
    region, and template_text() fills it in (the text sent is still static)."""
    region_files = {
        p.stem: p.read_text(encoding="ascii") for p in (PS_DIR / "_regions").glob("*.ps1")
    }
    assert {"common", "iis", "root_policy", "cert_import"} <= set(region_files)
    used: set[str] = set()
    for path in template_files():
        raw = _regions(path.read_text(encoding="ascii"))
        assert "common" in raw, f"{path.name} lacks the common region"
        filled = _regions(templates.template_text(path.stem))
        assert set(filled) == set(raw)
        for region, stub in raw.items():
            assert stub.count("\n") == 1, f"{path.name}: region {region} is not an empty stub"
            assert region_files[region] in filled[region], f"{path.name}: {region} not filled"
            used.add(region)
    assert used == set(region_files), f"unused region files: {set(region_files) - used}"


_MUTATING = re.compile(
    r"\$(store|source|destination)\.(Add|Remove)\(|\.Bindings\.(Add|Remove)\(|CommitChanges"
    r"|\.Recycle\(|SetAttributeValue|New-Item|Remove-Item|Set-ItemProperty|New-ItemProperty"
    r"|Start-Service|Stop-Service|Invoke-SectigoNative|Remove-SectigoPhysicalCopy"
    r"|Copy-Item|Move-Item|\[System\.IO\.File\]::WriteAll"
)


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_only_action_templates_call_mutating_apis(name: str) -> None:
    text = templates.template_text(name)
    body = text.replace(_regions(text)["common"], "")  # the shared helpers only define
    calls = {m.group(0) for m in _MUTATING.finditer(body)}
    if TEMPLATE_SPECS[name].read_only:
        assert calls == set(), f"{name} is read-only but calls {calls}"
        assert "-Write" not in body
    else:
        assert calls, f"{name} is an action template but the pattern sees no change"


def _hash_keys(text: str) -> list[set[str]]:
    """The keys of every hash literal in ``text`` (one set per literal)."""
    found = []
    for node in walk(parse(text).root_node):
        if node.type == "hash_literal_body":
            keys = {
                node_text(entry.children[0])
                for entry in node.children
                if entry.type == "hash_entry"
            }
            found.append(keys)
    return found


def _fields(model: type) -> tuple[set[str], set[str]]:
    fields = model.model_fields  # type: ignore[attr-defined]
    return set(fields), {k for k, f in fields.items() if f.is_required()}


@pytest.mark.parametrize(
    ("template", "model_path", "drop"),
    [
        ("observe", "sectigo_chain.state.models:ObservedState", set()),
        ("observe", "sectigo_chain.state.models:ObservedOS", set()),
        ("observe", "sectigo_chain.state.models:ObservedCertificate", set()),
        ("observe", "sectigo_chain.state.models:ObservedSite", set()),
        ("observe", "sectigo_chain.state.models:ObservedAppPool", set()),
        ("observe", "sectigo_chain.state.models:ObservedSslCert", set()),
        # observe removes "site" from each binding record; set_binding keeps it.
        ("observe", "sectigo_chain.state.models:ObservedBinding", {"site"}),
        ("set_binding", "sectigo_chain.state.plan_models:BindingRecord", set()),
        ("remove_certificate", "sectigo_chain.state.plan_models:CertBackup", set()),
    ],
)
def test_template_output_keys_match_the_models_that_parse_them(
    template: str, model_path: str, drop: set[str]
) -> None:
    # The host's JSON is parsed by frozen extra="forbid" models: a key the model lacks, or a
    # required field the template never writes, fails on a real host. Checked statically.
    import importlib

    module, _, attr = model_path.partition(":")
    model = getattr(importlib.import_module(module), attr)
    allowed, required = _fields(model)
    candidates = [keys - drop for keys in _hash_keys(templates.template_text(template))]
    matching = [keys for keys in candidates if required <= keys <= allowed and keys]
    assert matching, f"no hash literal in {template}.ps1 fits {attr}: {sorted(allowed)}"
    if "site" in drop:
        assert "$record.Remove('site')" in templates.template_text(template)


# ---------------------------------------------------------------------------------------------
# Rendered scripts: ordinary and hostile values


def _der_b64() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (REPO / "sectigo_chain/data/sectigo/r46-root-selfsigned.pem").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return base64.b64encode(der).decode("ascii")


HOSTILE = [
    "'",
    "\u2018",
    "\u2019",
    "\u201a",
    "\u201b",
    "'\u2018\u2019\u201a\u201b",
    '"\u201c\u201d\u201e',
    "`",
    "$(Remove-Item C:\\ -Recurse -Force)",
    "${env:PATH}; Remove-Item x",
    "a; Remove-Item x",
    "line1\nline2",
    "line1\r\nRemove-Item x\r\n",
    "nul\x00byte",
    "x\n'@\nRemove-Item x\n'@\n",
    'x\n"@\nRemove-Item x\n"@\n',
    "#> <# #",
    "caf\u00e9 \u4e2d\u6587 \U0001f600 \u2028 \x85",
    "A" * 20_000,
]
THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"


def ordinary_params() -> dict[str, dict[str, object]]:
    der = _der_b64()
    base: dict[str, dict[str, object]] = {
        "observe": {},
        "import_certificate": {"der_b64": der, "store_name": "CA", "friendly_name": "R46"},
        "remove_certificate": {"thumbprint": THUMB, "store_name": "Root"},
        "disallow_certificate": {"der_b64": der},
        "import_pfx": {
            "pfx_b64": base64.b64encode(b"not really a pfx").decode(),
            "password": "correct horse",
            "thumbprint": THUMB,
            "friendly_name": "www",
        },
        "move_certificate": {
            "thumbprint": THUMB,
            "from_location": "LocalMachine",
            "from_store": "Root",
            "to_location": "LocalMachine",
            "to_store": "CA",
            "remove_source": True,
        },
        "set_binding": {"site": "Default Web Site", "thumbprint": THUMB, "host": "www.example"},
        "remove_binding": {"site": "Default Web Site", "port": 8443},
        "set_root_auto_update": {"disabled": True},
        "restart": {"mode": "recycle", "app_pools": ["DefaultAppPool"]},
        "verify_chain": {"thumbprint": THUMB},
        "inspect_ccs": {"files": ["www.example.pfx", "_.example.pfx"], "password": "ccs pw"},
        "rebuild_ccs_pfx": {
            "path": "\\\\files01\\ccs\\www.example.pfx",
            "backup_path": "\\\\files01\\ccs\\www.example.pfx.sectigo-backup-20261207T000000Z",
            "expected_sha256": "AB" * 32,
            "add_der_b64": [der],
            "password": "ccs pw",
        },
        "restore_ccs_pfx": {
            "path": "\\\\files01\\ccs\\www.example.pfx",
            "backup_path": "\\\\files01\\ccs\\www.example.pfx.sectigo-backup-20261207T000000Z",
        },
        "outbound_tls_test": {"url": "https://acme.example/directory"},
    }

    def payload(name: str) -> str:
        return templates.render(name, base[name]).payload

    # Composites carry other templates' payloads.
    base["apply_plan"] = {
        "actions": [
            {"template": name, "payload": payload(name)}
            for name in ("import_certificate", "restart")
        ],
        "observe": payload("observe"),
    }
    base["verify_host"] = {}
    return base


# Fields where any text is a legitimate value.
FREE_TEXT = {
    "import_certificate": ["friendly_name"],
    "import_pfx": ["password", "friendly_name"],
    "set_binding": ["site"],
    "remove_binding": ["site"],
    "restart": ["app_pools"],
    "inspect_ccs": ["password"],
    "rebuild_ccs_pfx": ["password", "backup_path"],
    "restore_ccs_pfx": ["backup_path"],
}


def hostile_params(name: str, value: str) -> dict[str, object]:
    params = dict(ordinary_params()[name])
    for field in FREE_TEXT.get(name, []):
        params[field] = [value, value] if field == "app_pools" else value
    return params


def _standalones(script: templates.RenderedScript) -> list[str]:
    outs = [to_standalone(script)]
    if script.secret_fields:
        outs.append(to_standalone(script, embed_secrets=True))
    return outs


def _payload_literal(tree: tree_sitter.Tree) -> str:
    """The value of the first top-level ``$SectigoPayload = '...'`` statement."""
    for statement in walk(tree.root_node):
        if statement.type == "assignment_expression":
            assert node_text(statement).startswith("$SectigoPayload = ")
            literals = [n for n in walk(statement) if n.type == "string_literal"]
            assert len(literals) == 1
            return node_text(literals[0])[1:-1]
    raise AssertionError("no payload literal")


@functools.cache
def _baseline_shape(name: str, embed: bool) -> str:
    script = templates.render(name, ordinary_params()[name])
    return str(parse(to_standalone(script, embed_secrets=embed)).root_node)


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_ordinary_render_parses_and_passes_lint(name: str) -> None:
    script = templates.render(name, ordinary_params()[name])
    for text in _standalones(script):
        assert ps_lint(text) == [], name


@pytest.mark.parametrize("name", sorted(FREE_TEXT))
@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_values_cannot_change_the_script_structure(name: str, index: int) -> None:
    value = HOSTILE[index]
    hostile = templates.render(name, hostile_params(name, value))
    for embed in (False, True):
        if embed and not hostile.secret_fields:
            continue
        text = to_standalone(hostile, embed_secrets=embed)
        assert text.isascii()
        tree = parse(text)
        assert not tree.root_node.has_error
        # Same syntax tree shape as with ordinary values: no statement, string or comment
        # was added or split by the value.
        assert str(tree.root_node) == _baseline_shape(name, embed)
        # Everything generated before the payload is comments; the payload is one literal.
        head = text.split("\n$SectigoPayload = ", 1)[0]
        assert all(line == "" or line.startswith("#") for line in head.split("\n"))
        literal = _payload_literal(tree)
        assert re.fullmatch(r"[A-Za-z0-9+/=]+", literal)
        decoded = templates.decode_payload(literal)
        for field in FREE_TEXT[name]:
            expected = hostile.decoded_params()[field]
            if embed or field not in hostile.secret_fields:
                assert decoded[field] == expected
            else:
                assert decoded[field] is None  # asked for on the host instead


def test_plan_standalone_parses_with_every_template() -> None:
    from sectigo_chain.templates.standalone import to_standalone_plan

    scripts = [templates.render(n, ordinary_params()[n]) for n in templates.TEMPLATE_NAMES]
    text = to_standalone_plan(scripts)
    assert ps_lint(text) == []
    assert text.count("$SectigoOutput = & {") == len(scripts)
    assert text.count("throw 'sectigo_chain: template ") == len(scripts)
