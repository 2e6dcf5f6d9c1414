"""``ps_lint``: the checker that keeps Windows PowerShell 5.1-only, value-safe code in the
templates, and the tests that show each of its rules firing on a bad sample.

It rejects what Windows PowerShell 5.1 cannot run or what would open a road for a value into
code: PowerShell 7-only syntax (ternary, ``??``, ``??=``, ``?.``, ``?[``, ``&&``, ``||``,
``-Parallel``), PowerShell 6+ cmdlet parameters and variables, curly quotes and any non-ASCII
character (5.1 reads a BOM-less script in the ANSI code page), ``ConvertTo-Json`` without
``-Depth``, dynamic code (``Invoke-Expression``, ``[scriptblock]::Create``, ``Add-Type`` with
source), native tools called with anything but literal arguments, and automatic variables
(``$host``, ``$input``, ``$args``, ...) used as a name of one's own. It also reports every
ERROR and MISSING node of the tree-sitter-pwsh parse.

test_ps_syntax.py applies it to the templates and to rendered scripts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import tree_sitter
import tree_sitter_pwsh

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))

# ---------------------------------------------------------------------------------------------
# The checker


def parse(text: str) -> tree_sitter.Tree:
    return _PARSER.parse(text.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node`` (itself included), depth first, with a tree cursor."""
    cursor = node.walk()
    while True:
        current = cursor.node
        assert current is not None
        yield current
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent() or cursor.node == node:
                return


def node_text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def syntax_problems(text: str) -> list[str]:
    """ERROR and MISSING nodes, with their line numbers."""
    root = parse(text).root_node
    if not root.has_error:
        return []
    return [
        f"line {n.start_point[0] + 1}: {'MISSING' if n.is_missing else n.type} "
        f"{node_text(n)[:40]!r}"
        for n in walk(root)
        if n.type == "ERROR" or n.is_missing
    ]


_PS7_NODES = {
    "ternary_expression": "ternary operator ? : (PowerShell 7)",
    "ternary_argument_expression": "ternary operator ? : (PowerShell 7)",
    "null_coalesce_expression": "?? operator (PowerShell 7)",
    "null_coalesce_argument_expression": "?? operator (PowerShell 7)",
    "pipeline_chain_tail": "pipeline chain && / || (PowerShell 7)",
}
# (command, parameter) pairs that Windows PowerShell 5.1 does not have.
_PS6_PARAMETERS = {
    ("convertfrom-json", "-ashashtable"),
    ("convertfrom-json", "-depth"),
    ("convertfrom-json", "-noenumerate"),
    ("convertto-json", "-asarray"),
    ("convertto-json", "-enumsasstrings"),
    ("convertto-json", "-escapehandling"),
    ("get-content", "-asbytestream"),
    ("set-content", "-asbytestream"),
    ("add-content", "-asbytestream"),
    ("invoke-webrequest", "-skipcertificatecheck"),
    ("test-connection", "-tcpport"),
}
_PS6_COMMANDS = {"join-string", "test-json", "get-error", "convertfrom-markdown", "get-uptime"}
_PS6_VARIABLES = {"$iswindows", "$islinux", "$ismacos", "$iscoreclr", "$psstyle"}
# Automatic variables a template must never assign, loop over or take as a parameter.
_AUTOMATIC = {
    "$host",
    "$input",
    "$error",
    "$args",
    "$matches",
    "$this",
    "$_",
    "$psitem",
    "$home",
    "$pid",
    "$pwd",
    "$myinvocation",
    "$executioncontext",
    "$psboundparameters",
    "$pscmdlet",
    "$lastexitcode",
    "$sender",
    "$event",
    "$eventargs",
    "$switch",
    "$foreach",
    "$ofs",
}
_DYNAMIC_COMMANDS = {"invoke-expression", "iex", "start-process", "invoke-command", "icm"}
_NATIVE_WRAPPER = "invoke-sectigonative"
_CURLY = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e"


def _command_name(node: tree_sitter.Node) -> str:
    name = node.child_by_field_name("command_name")
    return node_text(name).lower() if name is not None else ""


def _code_ranges_excluding_literals(tree: tree_sitter.Tree) -> list[tuple[int, int]]:
    return [
        (n.start_byte, n.end_byte)
        for n in walk(tree.root_node)
        if n.type in ("comment", "string_literal")
    ]


def ps_lint(text: str) -> list[str]:
    """Every rule violation in ``text`` (empty list: clean)."""
    problems = [f"syntax: {p}" for p in syntax_problems(text)]
    for number, source_line in enumerate(text.split("\n"), start=1):
        for ch in source_line:
            if ch in _CURLY:
                problems.append(f"line {number}: curly quote U+{ord(ch):04X}")
            elif not ch.isascii():
                problems.append(f"line {number}: non-ASCII character U+{ord(ch):04X}")
    tree = parse(text)
    literal_ranges = _code_ranges_excluding_literals(tree)
    raw = text.encode("utf-8")
    for match in re.finditer(rb"\?\?|\?\.|\?\[", raw):
        if not any(start <= match.start() < end for start, end in literal_ranges):
            problems.append(f"byte {match.start()}: null-conditional {match.group().decode()}")
    for node in walk(tree.root_node):
        line = node.start_point[0] + 1
        if node.type in _PS7_NODES:
            problems.append(f"line {line}: {_PS7_NODES[node.type]}")
        elif node.type == "assignment_operator" and node_text(node) == "??=":
            problems.append(f"line {line}: ??= operator (PowerShell 7)")
        elif node.type == "variable" and node_text(node).lower() in _PS6_VARIABLES:
            problems.append(f"line {line}: {node_text(node)} does not exist in 5.1")
        elif node.type == "invocation_expression":
            member = node_text(node).replace(" ", "").lower()
            if member.startswith(("[scriptblock]::create", "$executioncontext")):
                problems.append(f"line {line}: dynamic code ({node_text(node)[:40]})")
        elif node.type == "command":
            problems += _lint_command(node, line)
        if node.type in ("left_assignment_expression", "foreach_statement", "script_parameter"):
            bound = next((n for n in node.children if n.type == "variable"), None)
            if node.type == "left_assignment_expression":
                bound = next((n for n in walk(node) if n.type == "variable"), None)
            if bound is not None and node_text(bound).lower() in _AUTOMATIC:
                problems.append(f"line {line}: {node_text(bound)} is an automatic variable")
    return problems


def _lint_command(node: tree_sitter.Node, line: int) -> list[str]:
    problems = []
    name = _command_name(node)
    own = [
        node_text(n).lower()
        for n in (node.child_by_field_name("command_elements") or node).children
        if n.type == "command_parameter"
    ]
    if "-parallel" in own:
        problems.append(f"line {line}: -Parallel (PowerShell 7)")
    for command, parameter in _PS6_PARAMETERS:
        if name == command and parameter in own:
            problems.append(f"line {line}: {name} {parameter} (PowerShell 6+)")
    if name in _PS6_COMMANDS:
        problems.append(f"line {line}: {name} (PowerShell 6+)")
    if name in _DYNAMIC_COMMANDS:
        problems.append(f"line {line}: {name} (dynamic code or process launch)")
    if name == "add-type" and any(p in own for p in ("-typedefinition", "-memberdefinition")):
        problems.append(f"line {line}: Add-Type with source (compiles code)")
    if name == "convertto-json" and "-depth" not in own:
        problems.append(f"line {line}: ConvertTo-Json without -Depth")
    if name == _NATIVE_WRAPPER:
        problems += _lint_native_arguments(node, line)
    return problems


def _lint_native_arguments(node: tree_sitter.Node, line: int) -> list[str]:
    """Invoke-SectigoNative -Arguments must be literal strings: no value reaches a native
    command line, where Windows PowerShell 5.1's argument quoting is unreliable."""
    elements = node.child_by_field_name("command_elements")
    children = [
        n for n in (elements.children if elements else []) if n.type != "command_argument_sep"
    ]
    values = []
    for position, child in enumerate(children):
        if child.type == "command_parameter" and node_text(child).lower() == "-arguments":
            values = children[position + 1 : position + 2]
        elif child.type == "command_parameter" and node_text(child).lower().startswith(
            "-arguments:"
        ):
            values = [child]
    if not values:
        return [f"line {line}: Invoke-SectigoNative without -Arguments"]
    kinds = {n.type for n in walk(values[0])}
    if kinds & {"variable", "sub_expression", "expandable_string_literal", "command"}:
        return [f"line {line}: native tool called with a non-literal argument"]
    return []


# ---------------------------------------------------------------------------------------------
# The checker catches each construct (so it cannot pass silently)

BAD_SAMPLES = {
    "ternary": "$x = $a ? 1 : 2",
    "null_coalesce": "$x = $a ?? 'b'",
    "null_coalesce_assign": "$x ??= 'b'",
    "null_conditional_member": "$x = $a?.Name",
    "null_conditional_braced": "$x = ${a}?.Name",
    "null_conditional_index": "$x = $a?[0]",
    "pipeline_and": "Get-Item a && Get-Item b",
    "pipeline_or": "Get-Item a || Get-Item b",
    "parallel": "1..3 | ForEach-Object -Parallel { $_ }",
    "parallel_alias": "1..3 | % -Parallel { $_ }",
    "curly_single_quote": "$x = \u2018a\u2019",
    "curly_double_quote": "$x = \u201ca\u201d",
    "non_ascii": "# caf\u00e9\n$x = 1",
    "convertto_json_no_depth": "$j = ConvertTo-Json -InputObject $x -Compress",
    "convertto_json_pipeline_no_depth": "$j = $x | ConvertTo-Json",
    "ashashtable": "$h = '{}' | ConvertFrom-Json -AsHashtable",
    "asbytestream": "$b = Get-Content -Path x -AsByteStream",
    "iswindows": "if ($IsWindows) { 1 }",
    "join_string": "$s = $a | Join-String -Separator ','",
    "invoke_expression": "Invoke-Expression $code",
    "iex": "iex $code",
    "scriptblock_create": "$b = [scriptblock]::Create($code)",
    "add_type_source": "Add-Type -TypeDefinition $source",
    "start_process": "Start-Process cmd.exe -ArgumentList $a",
    "native_variable_argument": "Invoke-SectigoNative -FilePath $x -Arguments @('show', $p.site)",
    "native_expandable_argument": 'Invoke-SectigoNative -FilePath $x -Arguments @("a$b")',
    "native_variable_list": "Invoke-SectigoNative -FilePath $x -Arguments $list",
    "native_no_arguments": "Invoke-SectigoNative -FilePath $x",
    "syntax_error": "if ($a { }",
    "assign_automatic": "$host = 'www.example.com'",
    "loop_automatic": "foreach ($input in $list) { $input }",
    "param_automatic": "function f {\n    param([string]$Args)\n    $Args\n}",
}

# The rule each bad sample must trip (a substring of its message): a sample caught only by
# another rule (say, the syntax check) would hide a rule that no longer works.
EXPECTED_RULE = {
    "ternary": "ternary operator ? : (PowerShell 7)",
    "null_coalesce": "?? operator (PowerShell 7)",
    "null_coalesce_assign": "??= operator (PowerShell 7)",
    "null_conditional_member": "null-conditional ?.",
    "null_conditional_braced": "null-conditional ?.",
    "null_conditional_index": "null-conditional ?[",
    "pipeline_and": "pipeline chain && / ||",
    "pipeline_or": "pipeline chain && / ||",
    "parallel": "-Parallel (PowerShell 7)",
    "parallel_alias": "-Parallel (PowerShell 7)",
    "curly_single_quote": "curly quote U+2018",
    "curly_double_quote": "curly quote U+201C",
    "non_ascii": "non-ASCII character U+00E9",
    "convertto_json_no_depth": "ConvertTo-Json without -Depth",
    "convertto_json_pipeline_no_depth": "ConvertTo-Json without -Depth",
    "ashashtable": "convertfrom-json -ashashtable (PowerShell 6+)",
    "asbytestream": "get-content -asbytestream (PowerShell 6+)",
    "iswindows": "$IsWindows does not exist in 5.1",
    "join_string": "join-string (PowerShell 6+)",
    "invoke_expression": "invoke-expression (dynamic code or process launch)",
    "iex": "iex (dynamic code or process launch)",
    "scriptblock_create": "dynamic code ([scriptblock]::Create",
    "add_type_source": "Add-Type with source (compiles code)",
    "start_process": "start-process (dynamic code or process launch)",
    "native_variable_argument": "native tool called with a non-literal argument",
    "native_expandable_argument": "native tool called with a non-literal argument",
    "native_variable_list": "native tool called with a non-literal argument",
    "native_no_arguments": "Invoke-SectigoNative without -Arguments",
    "syntax_error": "syntax: line 1:",
    "assign_automatic": "$host is an automatic variable",
    "loop_automatic": "$input is an automatic variable",
    "param_automatic": "$Args is an automatic variable",
}


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_lint_catches_bad_sample(name: str) -> None:
    problems = ps_lint(BAD_SAMPLES[name])
    rule = EXPECTED_RULE[name]
    assert any(rule in p for p in problems), f"{name}: expected {rule!r}, got {problems}"


def test_every_bad_sample_names_its_rule() -> None:
    assert sorted(EXPECTED_RULE) == sorted(BAD_SAMPLES)


@pytest.mark.parametrize(
    "good",
    [
        "$x = 'a ?? b ?. c ?[d]'",
        "# a comment about ?? and ?.\n$x = 1",
        "$j = ConvertTo-Json -InputObject $x -Depth 10 -Compress",
        "if ($a -and $b) { $c = 1 } else { $c = 2 }",
        "Invoke-SectigoNative -FilePath $netsh -Arguments @('http', 'show', 'sslcert')",
        "Add-Type -Path $dll",
        "$v = $a | Where-Object { $_ -gt 1 }",
    ],
)
def test_lint_accepts_5_1_code(good: str) -> None:
    assert ps_lint(good) == []


def test_tree_sitter_does_not_treat_curly_quotes_as_delimiters() -> None:
    # In PowerShell, U+2019 ends a single-quoted string; tree-sitter-pwsh reads on. This is why
    # quoting is checked against a tokenizer port (test_ps_quote.py), not the grammar alone.
    tree = parse("$s = 'a\u2019; Remove-Item x; \u2019b'")
    assert not any(n.type == "command" for n in walk(tree.root_node))
