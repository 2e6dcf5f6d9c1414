"""Issue 11: what a line-by-line review of the templates against Windows found, pinned.

Nothing here runs PowerShell. Each defect is pinned where it can be seen without Windows: on
the tree-sitter-pwsh parse of the template text (a pipeline, a catch block, a finally block, an
assignment), and, where the fix changes behaviour, on the simulated host that models it
(tests/integration/test_sim_windows_review.py). Whether the text does on Windows what these
checks assume is for tests/windows/ and .github/workflows/windows.yml to settle.
"""

from __future__ import annotations

import re

import pytest
import tree_sitter
from test_ps_lint import node_text, parse, walk

from sectigo_chain.templates import render as templates
from sectigo_chain.templates.params import TEMPLATE_SPECS

# Composite templates (apply_plan) are their entries' own code, checked in the source templates
# (tests/unit/test_compose.py proves the generated files hold exactly that code).
ACTION_TEMPLATES = [
    n
    for n in templates.TEMPLATE_NAMES
    if not TEMPLATE_SPECS[n].read_only and not TEMPLATE_SPECS[n].composite
]


def _commands(node: tree_sitter.Node) -> list[str]:
    return [node_text(n) for n in walk(node) if n.type == "command_name"]


def _statement(node: tree_sitter.Node) -> tree_sitter.Node:
    """The whole statement ``node`` is part of (up to its statement list)."""
    while node.parent is not None and node.parent.type != "statement_list":
        node = node.parent
    return node


def _function(text: str, name: str) -> tree_sitter.Node:
    for node in walk(parse(text).root_node):
        if node.type == "function_statement" and node_text(node).split()[1] == name:
            return node
    raise AssertionError(f"function {name} not found")


# ---------------------------------------------------------------------------------- defect 1


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_physical_stores_result_is_indexed_never_piped(name: str) -> None:
    """``Get-SectigoPhysicalStores`` returns one ``string[]`` (unary comma). Wrapped in
    ``@(...)`` and piped to ``Select-Object -First 1`` it yields the whole array, so
    ``backup.physical_store`` became ``[".AuthRoot"]`` or ``[]``: every call must be the only
    command of its statement (assigned, then indexed)."""
    tree = parse(templates.template_text(name))
    calls = [
        n
        for n in walk(tree.root_node)
        if n.type == "command_name" and node_text(n) == "Get-SectigoPhysicalStores"
    ]
    for call in calls:
        statement = _statement(call)
        assert _commands(statement) == ["Get-SectigoPhysicalStores"], node_text(statement)
        assert node_text(statement).lstrip().startswith("$"), node_text(statement)
    backup = node_text(_function(templates.template_text(name), "Get-SectigoCertificateBackup"))
    assert "Select-Object" not in backup
    assert "$physicalStores[0]" in backup


# ---------------------------------------------------------------------------------- defect 2


def test_sni_endpoint_comes_from_the_hostnameport_value() -> None:
    """HTTP.sys's own readers take an SNI entry's endpoint from its ``HostnamePort`` value;
    the subkey name is only a fallback."""
    text = templates.template_text("observe")
    tree = parse(text)
    record = next(
        n
        for n in walk(tree.root_node)
        if n.type == "hash_literal_expression" and "app_id" in node_text(n)
    )
    assert re.search(r"endpoint\s*=\s*\$endpoint\b", node_text(record)), node_text(record)
    assignments = [
        node_text(n)
        for n in walk(tree.root_node)
        if n.type == "assignment_expression" and node_text(n).startswith("$endpoint =")
    ]
    assert "$endpoint = [string]$item.PSChildName" in assignments
    assert "$endpoint = [string]$values.HostnamePort" in assignments


# ---------------------------------------------------------------------------------- defect 3


def test_remove_certificate_never_removes_from_the_logical_store() -> None:
    """``X509Store.Remove`` on a logical store deletes the first match across every physical
    store behind it (.GroupPolicy, .Enterprise included): the template deletes only the named
    physical store's key, and refuses when no single physical store is named or found."""
    text = templates.template_text("remove_certificate")
    body = text.split("# ---- template body", 1)[1]
    assert not re.search(r"\.Remove\(", body), "a store's Remove() is called"
    assert "Remove-SectigoPhysicalCopy" in _commands(parse(body).root_node)
    assert "$held.Count -gt 1" in body
    remover = node_text(_function(text, "Remove-SectigoPhysicalCopy"))
    assert "$candidate[0] -cne $PhysicalStore" in remover
    assert "Remove-Item -LiteralPath $item" in remover
    assert ".Remove(" not in remover
    assert "@('.Default', '.AuthRoot') -cnotcontains $PhysicalStore" in remover


def test_move_certificate_removes_the_source_copy_from_one_physical_store() -> None:
    """Issue 11 defect 3, left in move_certificate: with remove_source it called
    ``$source.Remove($certificate)`` on the logical store (the first match across every
    physical store). It now deletes the one physical store's copy with
    ``Remove-SectigoPhysicalCopy``, decided (and refused for several or policy copies) before
    the destination is changed."""
    text = templates.template_text("move_certificate")
    body = text.split("# ---- template body", 1)[1]
    assert not re.search(r"\$source\.Remove\(", body), "the logical source store's Remove()"
    tree = parse(body)
    commands = _commands(tree.root_node)
    assert "Remove-SectigoPhysicalCopy" in commands
    assert "Get-SectigoPhysicalStores" in commands
    assert "$held.Count -gt 1" in body
    remover = [
        n
        for n in walk(tree.root_node)
        if n.type == "command_name" and node_text(n) == "Remove-SectigoPhysicalCopy"
    ]
    assert len(remover) == 1
    call = node_text(_statement(remover[0]))
    assert "-PhysicalStore $sourcePhysical" in call
    # decided before the destination store's Add
    assert body.index("Get-SectigoPhysicalStores") < body.index("$destination.Add(")
    assert body.index("$destination.Add(") < body.index("Remove-SectigoPhysicalCopy")


# ---------------------------------------------------------------------------------- defect 4


@pytest.mark.parametrize("name", ACTION_TEMPLATES)
def test_only_not_found_reads_as_absent(name: str) -> None:
    """A catch around opening a store re-throws everything but 0x80070002 (access denied for a
    non-elevated or filtered-token user was read as "store absent": ok, removed: false)."""
    tree = parse(templates.template_text(name))
    for node in walk(tree.root_node):
        if node.type != "try_statement":
            continue
        block = node.children[1]
        if "Open-SectigoStore" not in _commands(block):
            continue
        for clause in (n for n in walk(node) if n.type == "catch_clause"):
            if clause.parent is None or clause.parent.parent != node:
                continue
            text = node_text(clause)
            if "New-SectigoError -Record $_" in text:
                continue  # the template's own catch: reports the error
            assert "Test-SectigoNotFound -Problem $_" in text, text
            assert re.search(r"\bthrow\b", text), text


def test_not_found_is_hresult_0x80070002() -> None:
    test = node_text(_function(templates.template_text("observe"), "Test-SectigoNotFound"))
    # 0x80070002 as the signed Int32 .NET reports: the literal in the text must be that value
    literal = int(re.search(r"-eq (-?\d+)", test).group(1))  # type: ignore[union-attr]
    assert literal & 0xFFFFFFFF == 0x80070002
    assert "InnerException" in test


@pytest.mark.parametrize(
    "name", [n for n in templates.TEMPLATE_NAMES if not TEMPLATE_SPECS[n].composite]
)
def test_action_templates_check_elevation_before_changing_anything(name: str) -> None:
    text = templates.template_text(name)
    body = text.split("# ---- template body", 1)[1]
    if TEMPLATE_SPECS[name].read_only:
        assert "Assert-SectigoElevated" not in body
        return
    assert body.count("Assert-SectigoElevated") == 1
    mutating = re.search(
        r"\$(store|source|destination)\.(Add|Remove)\(|Bindings\.|CommitChanges|\.Recycle\("
        r"|Set-ItemProperty|New-Item|Remove-Item|Invoke-SectigoNative|Remove-SectigoPhysicalCopy"
        r"|Import-SectigoCertificate|Open-SectigoStore|Copy-Item|Move-Item",
        body,
    )
    assert mutating is not None
    assert body.index("Assert-SectigoElevated") < mutating.start()
    check = node_text(_function(text, "Assert-SectigoElevated"))
    assert "WindowsBuiltInRole]::Administrator" in check
    assert "'PermissionDenied'" in check


# ---------------------------------------------------------------------------------- defect 5


def test_set_binding_replaces_the_binding_instead_of_changing_it_in_place() -> None:
    """An in-place certificate change fails on some servers ("A specified logon session does
    not exist", win-acme #371): the element is replaced, attributes copied, position kept."""
    text = templates.template_text("set_binding")
    tree = parse(text.split("# ---- template body", 1)[1])
    targets = [
        node_text(n).split("=", 1)[0].strip()
        for n in walk(tree.root_node)
        if n.type == "assignment_expression"
    ]
    assert "$binding.CertificateHash" not in targets
    assert "$binding.CertificateStoreName" not in targets
    assert "$replacement.CertificateHash" in targets
    body = node_text(tree.root_node)
    assert "$site.Bindings.CreateElement('binding')" in body
    assert "$site.Bindings.Remove($binding)" in body
    assert "$site.Bindings.AddAt($index, $replacement)" in body
    assert "foreach ($attribute in $binding.Attributes)" in body
    assert "$differs -or [bool]$p.reapply" in body


# ---------------------------------------------------------------------------------- defect 6


def test_restart_restarts_what_was_running_in_finally_and_checks_every_exit_code() -> None:
    text = templates.template_text("restart")
    tree = parse(text.split("# ---- template body", 1)[1])
    finals = [n for n in walk(tree.root_node) if n.type == "finally_clause"]
    restarting = [f for f in finals if "Start-SectigoServices" in _commands(f)]
    assert len(restarting) == 2  # iisreset and http_service
    for clause in restarting:
        assert "-Names $running" in node_text(clause)
    runs = re.findall(r"\$(\w+) = Invoke-SectigoNative", text)
    assert sorted(runs) == ["run", "start", "stop"]
    for var in runs:
        assert f"${var}.exit_code -ne 0" in text, var
    assert "@('/restart', '/noforce', '/timeout:120')" in text


def test_restart_is_not_retried() -> None:
    """``restart`` was marked idempotent, so a timeout retried the stop while the first run
    may still be stopping services."""
    assert TEMPLATE_SPECS["restart"].idempotent is False
    assert templates.render("restart", {"mode": "iisreset", "app_pools": []}).idempotent is False


# ---------------------------------------------------------------------------------- defect 9


def test_a_32_bit_powershell_is_refused_before_the_payload_is_read() -> None:
    text = templates.template_text("observe")
    reader = node_text(_function(text, "Read-SectigoPayload"))
    assert _commands(_function(text, "Read-SectigoPayload"))[0] == "Assert-SectigoNativeProcess"
    assert "FromBase64String" in reader
    check = node_text(_function(text, "Assert-SectigoNativeProcess"))
    assert "Is64BitOperatingSystem -and -not [System.Environment]::Is64BitProcess" in check


# --------------------------------------------------------------------------------- defect 10


def test_error_type_is_the_base_exception() -> None:
    """PowerShell wraps .NET errors in MethodInvocationException; the real type is reported."""
    make = node_text(_function(templates.template_text("observe"), "New-SectigoError"))
    assert "$info.type = $exception.GetBaseException().GetType().FullName" in make
    assert "$info.type = $exception.GetType()" not in make


def test_move_into_a_current_user_store_counts_only_the_users_own_copies() -> None:
    """CurrentUser's Root/CA/Disallowed also show LocalMachine's certificates (.LocalMachine
    physical store). Rollback restores a user copy by staging it in LocalMachine and moving
    it: a logical-store presence check found the staged copy "present" in the user store,
    skipped the copy and then deleted the staging copy, restoring nothing. Presence in a
    CurrentUser destination is now decided by the user's own physical stores."""
    body = templates.template_text("move_certificate").split("# ---- template body", 1)[1]
    tree = parse(body)
    checks = [
        n
        for n in walk(tree.root_node)
        if n.type == "if_statement" and "$toLocation -eq 'CurrentUser'" in node_text(n)
    ]
    assert len(checks) == 1, "one CurrentUser presence check"
    text = node_text(checks[0])
    assert "Get-SectigoPhysicalStores -Location $toLocation -StoreName $toStore" in text
    assert "$present = $null" in text
    # the check sits between finding the destination copy and deciding to add one
    assert (
        body.index("$present = Find-SectigoCertificate -Store $destination")
        < body.index(text)
        < body.index("if ($null -eq $present) {")
    )


def test_restart_snapshots_only_http_related_services() -> None:
    """The review of the issue 11 fix: restart recorded *every* running service and started
    any of them that stopped meanwhile (a trigger-start service, say), failing the step when
    one would not start. Only HTTP, its dependants and WAS/W3SVC are recorded now."""
    body = templates.template_text("restart").split("# ---- template body", 1)[1]
    tree = parse(body)
    for node in walk(tree.root_node):
        if n_type(node) == "pipeline":
            commands = _commands(node)
            assert not (commands[:1] == ["Get-Service"] and len(commands) > 1), node_text(node)
    assigned = [
        node_text(n)
        for n in walk(tree.root_node)
        if n_type(n) == "assignment_expression" and "$running" in node_text(n).split("=")[0]
    ]
    assert assigned == ["$running = Get-SectigoRunningHttpServices"] * 2
    helper = node_text(_function(templates.template_text("restart"), "Get-SectigoHttpServices"))
    assert "DependentServices" in helper
    assert "'WAS', 'W3SVC'" in helper


def n_type(node: tree_sitter.Node) -> str:
    return str(node.type)
