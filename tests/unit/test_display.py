"""display: the one renderer (HTML for Jupyter, Markdown, terminal text) for every report.

Reports are real: chains judged by ``report_for_chain`` over lab certificates, a plan/apply/
verify run and a small fleet on simulated hosts. Hostile strings are injected into every text
field a host or certificate controls.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.display import render as display
from sectigo_chain.hosts.sim.scenarios import scenario_leaf
from sectigo_chain.state.plan_models import Action, Plan
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.tls.check import report_for_chain
from sectigo_chain.tls.report import ChainReport, CheckFailure
from sectigo_chain.x509.inspect import inspect_file

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "base", "source"}
PEM = Path(__file__).resolve().parents[2] / "sectigo_chain" / "data" / "sectigo" / "ca-dv-r36.pem"


class Page(HTMLParser):
    """A strict reader: balanced tags, no active content, chain rows and boxes collected."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[dict[str, Any]] = []  # {"label": str, "boxes": [(verdict, style, text)]}
        self._box: list[Any] | None = None
        self._label = False
        self.feed(text)
        self.close()
        assert self.stack == [], f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        assert tag not in ("script", "iframe", "object", "embed", "style", "link", "img"), tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            assert "javascript:" not in (value or "").lower()
            assert "url(" not in (value or "").lower()  # no external assets
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)
        cls = (a.get("class") or "").split()
        if "sc-chain-row" in cls:
            self.rows.append({"label": "", "boxes": []})
        if "sc-profile" in cls:
            self._label = True
        if ("sc-box" in cls or "sc-break" in cls) and self.rows:
            self._box = [a.get("data-verdict"), a.get("style") or "", "", "sc-break" in cls]
            self._depth = len(self.stack)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        if self._box is not None and len(self.stack) == self._depth:
            self.rows[-1]["boxes"].append(tuple(self._box))
            self._box = None
        self._label = False
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._label and self.rows:
            self.rows[-1]["label"] += data
        if self._box is not None:
            self._box[2] += data


@pytest.fixture(scope="module")
def reports(lab: LabHierarchy) -> dict[str, ChainReport]:
    leaf = scenario_leaf(lab)
    # One clock: judge inside the scenario leaf's own validity window (the lab issues it from
    # the wall clock, so no literal date may be mixed with it).
    at = leaf.cert.not_valid_before_utc + dt.timedelta(days=1)
    out = {}
    for kind in ("short", "cross"):
        out[kind] = report_for_chain(
            lab.served_chain(leaf, kind),
            target="www.example.test:443",
            at=at,
            catalog=lab.catalog,
            hostname="www.example.test",
        )
    return out


def _hostile_report(report: ChainReport) -> ChainReport:
    served = tuple(c.model_copy(update={"common_name": HOSTILE}) for c in report.served_chain)
    findings = tuple(f.model_copy(update={"detail": HOSTILE}) for f in report.findings)
    profiles = {
        n: p.model_copy(update={"reason": HOSTILE, "anchor": f"CN={HOSTILE}"})
        for n, p in report.profiles.items()
    }
    return report.model_copy(
        update={
            "target": HOSTILE,
            "served_chain": served,
            "findings": findings,
            "profiles": profiles,
            "notes": (HOSTILE,),
        }
    )


def _hostile_plan() -> Plan:
    action = Action(
        kind="set_binding",
        reason=f"bind site {HOSTILE} | x",
        template="set_binding",
        params={"site": HOSTILE},
        rollback=HOSTILE,
    )
    return Plan(
        target=f"sim://{HOSTILE}",
        actions=(action,),
        noop_reasons=(HOSTILE,),
        warnings=(HOSTILE,),
        affected_sites=(HOSTILE,),
    )


# ----------------------------------------------------------------------------- chain picture


def test_broken_chain_picture_is_red_for_legacy_and_green_for_modern(
    reports: dict[str, ChainReport],
) -> None:
    page = Page(display.to_html(reports["short"]))
    rows = {r["label"]: r["boxes"] for r in page.rows}
    assert set(rows) == {"legacy", "modern"}
    legacy, modern = rows["legacy"], rows["modern"]
    # legacy: leaf -> issuing CA, then the red break that says why
    assert [b[0] for b in legacy] == ["fail", "fail", "fail"]
    assert legacy[-1][3] is True
    assert "incomplete_fixable" in legacy[-1][2]
    assert all("#cf222e" in b[1] for b in legacy)
    # modern: leaf -> issuing CA -> R46 (its trust anchor), all green
    assert [b[0] for b in modern] == ["pass", "pass", "pass"]
    assert all("#1a7f37" in b[1] for b in modern)
    assert modern[-1][2].startswith("trust anchor")
    assert "SHORT_CHAIN_R46" in "".join(page.text)


def test_fixed_chain_picture_goes_through_the_cross_sign(reports: dict[str, ChainReport]) -> None:
    page = Page(display.to_html(reports["cross"]))
    rows = {r["label"]: r["boxes"] for r in page.rows}
    legacy = rows["legacy"]
    assert [b[2].split("Sectigo")[0].split("USERTrust")[0] for b in legacy] == [
        "leafwww.example.test",
        "issuing CA",
        "cross-sign",
        "trust anchor",
    ]
    assert legacy[3][2].endswith("USERTrust RSA Certification Authority")
    assert {b[0] for r in rows.values() for b in r} == {"pass"}
    assert not any(b[3] for r in rows.values() for b in r)


def test_chain_html_accepts_plain_verdicts_and_shows_amber() -> None:
    certs = [
        {"common_name": "leaf.test", "subject": "CN=leaf.test", "issuer": "CN=CA"},
        {"common_name": "CA", "subject": "CN=CA", "issuer": "CN=Root"},
    ]
    page = Page(display.chain_html(certs, {"a": True, "b": "warn", "c": False}))
    rows = {r["label"]: r["boxes"] for r in page.rows}
    assert [b[0] for b in rows["a"]] == ["pass", "pass"]
    assert [b[0] for b in rows["b"]] == ["warn", "warn"]
    assert all("#9a6700" in b[1] for b in rows["b"])
    assert [b[0] for b in rows["c"]] == ["fail", "fail", "fail"]  # ends with the break
    neutral = Page(display.chain_html(certs))
    assert [b[0] for b in neutral.rows[0]["boxes"]] == ["neutral", "neutral"]


# ----------------------------------------------------------------------------- escaping


def test_hostile_strings_are_escaped_in_html(reports: dict[str, ChainReport]) -> None:
    for obj in (_hostile_report(reports["short"]), _hostile_plan()):
        html = display.to_html(obj)
        assert HOSTILE not in html
        assert "<script" not in html.lower()
        assert ESCAPED in html
        page = Page(html)  # parses, balanced, no active content
        assert HOSTILE in "".join(page.text)  # shown to the reader as text


def test_hostile_strings_are_inert_in_markdown(reports: dict[str, ChainReport]) -> None:
    for obj in (_hostile_report(reports["short"]), _hostile_plan()):
        md = display.to_markdown(obj)
        assert HOSTILE not in md
        assert "<script" not in md.lower()
        assert "&lt;script&gt;" in md


def test_unknown_objects_render_as_escaped_repr() -> None:
    class Odd:
        def __repr__(self) -> str:
            return HOSTILE

    html = display.to_html(Odd())
    assert html == f'<pre class="sectigo-chain">{ESCAPED}</pre>'
    assert display.to_text(Odd()) == HOSTILE
    assert HOSTILE in display.to_markdown(Odd())  # inside a code fence: shown as code
    assert display.to_markdown(Odd()).startswith("```\n")


# ----------------------------------------------------------------------------- Markdown


def _tables(md: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line)) - 2


def test_markdown_tables_are_well_formed(reports: dict[str, ChainReport]) -> None:
    for obj in (reports["short"], _hostile_report(reports["short"]), _hostile_plan()):
        tables = _tables(display.to_markdown(obj))
        assert tables
        for table in tables:
            width = _cells(table[0])
            assert re.fullmatch(r"\|(---\|)+", table[1])
            assert _cells(table[1]) == width
            assert all(_cells(row) == width for row in table[2:]), table


def test_table_markdown_pads_and_escapes() -> None:
    md = display.table_markdown([("a|b", "x\ny"), ("only",)], ("h1", "h2"))
    assert md.splitlines() == ["| h1 | h2 |", "|---|---|", "| a\\|b | x y |", "| only |  |"]


# ----------------------------------------------------------------------------- text


def test_text_has_no_ansi_unless_asked(reports: dict[str, ChainReport]) -> None:
    plain = display.to_text(reports["short"])
    assert "\x1b" not in plain
    assert plain.splitlines()[0] == "www.example.test:443: FAIL"
    assert "legacy FAIL: [leaf] www.example.test -> [issuing CA]" in plain
    colored = display.to_text(reports["short"], color=True)
    assert "\x1b[31mFAIL\x1b[0m" in colored
    assert "\x1b[32mPASS\x1b[0m" in colored


def test_use_color_follows_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert display.use_color(Tty()) is True
    assert display.use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert display.use_color(Tty()) is False


def test_table_text_aligns_and_escapes_control_characters() -> None:
    text = display.table_text([("a", "x\x1b[31my"), ("long cell", "z")], ("h", "value"))
    lines = text.splitlines()
    assert lines[0] == "h          value"
    assert lines[1] == "---------  ----------"
    assert lines[2] == "a          x\\x1b[31my"
    assert lines[3] == "long cell  z"


# ----------------------------------------------------------------------------- every report


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real plan, apply, verify and fleet on simulated hosts."""
    from sectigo_chain.fleet.inventory import parse_inventory
    from sectigo_chain.fleet.rollout import run_fleet
    from sectigo_chain.hosts.sim.host import SimulatedHost
    from sectigo_chain.run.applier import apply, observe
    from sectigo_chain.run.verifier import verify
    from sectigo_chain.state.planner import plan
    from sectigo_chain.state.recipe import sectigo_fix

    journals = tmp_path_factory.mktemp("journals")
    host = SimulatedHost("broken-r46")
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    now = dt.datetime.now(dt.timezone.utc)
    the_plan = plan(desired, observe(host), at=now, catalog=host.catalog, target=host.target)
    result = apply(the_plan, host, desired=desired, catalog=host.catalog, journal_dir=journals)
    with host.start_tls() as listener:
        verified = verify(
            host, desired, endpoint=listener.address_for("Default Web Site"), catalog=host.catalog
        )
    inventory = parse_inventory(
        {
            "hosts": [
                {"name": "web01", "target": "sim://broken-r46"},
                {"name": HOSTILE[1:7], "target": "sim://gpo-root"},
            ]
        }
    )
    fleet = run_fleet(inventory, "plan", journal_dir=journals)
    return {"plan": the_plan, "apply": result, "verify": verified, "fleet": fleet}


def test_plan_and_apply_render(flow: dict[str, Any]) -> None:
    plan_html = Page(flow["plan"]._repr_html_())
    assert "import_cross_sign" in "".join(plan_html.text)
    assert "table" in plan_html.tags
    text = display.to_text(flow["plan"])
    assert text.startswith("Plan for sim://broken-r46:")
    assert "remove_self_signed_root" in text
    apply_html = flow["apply"]._repr_html_()
    Page(apply_html)
    assert "The host now matches the desired state" in apply_html
    assert "changed" in display.to_text(flow["apply"])
    assert flow["apply"]._repr_markdown_().startswith("### Apply on sim://broken-r46")


def test_verify_renders_both_chains(flow: dict[str, Any]) -> None:
    report = flow["verify"]
    assert report.verdict == "pass"
    page = Page(display.to_html(report))
    verdicts = {b[0] for r in page.rows for b in r["boxes"]}
    assert verdicts == {"pass"}
    labels = [r["label"] for r in page.rows]
    assert labels == ["Windows", "legacy", "modern", "both"]  # the host chain, then served
    host_row = page.rows[0]["boxes"]
    assert [b[2].split(" ")[0] for b in host_row] == [
        "leafwww.example.test",
        "issuing",
        "cross-signSectigo",
        "rootUSERTrust",
    ]
    assert display.to_text(report).splitlines()[0].endswith(": PASS")
    assert "1. Desired state: ✅" in display.to_markdown(report)


def test_fleet_renders_a_row_per_host(flow: dict[str, Any]) -> None:
    fleet = flow["fleet"]
    page = Page(display.to_html(fleet))
    text = "".join(page.text)
    assert "web01" in text
    assert "PlanRefused" in text
    lines = display.to_text(fleet).splitlines()
    assert lines[0].startswith("Fleet plan: 2 host(s)")
    assert re.match(r"\s+web01\s+planned\s+fail", lines[3])
    md = display.to_markdown(fleet)
    assert all(_cells(row) == 6 for t in _tables(md) for row in t)


def test_check_failure_and_file_report_render() -> None:
    failure = CheckFailure(target=HOSTILE, servername=None, error="TLSTimeout", message="slow")
    html = display.to_html(failure)
    Page(html)
    assert HOSTILE not in html
    assert display.to_text(failure) == f"{HOSTILE}: ERROR TLSTimeout: slow"
    report = inspect_file(PEM)
    page = Page(report._repr_html_())
    assert "Sectigo Public Server Authentication CA DV R36" in "".join(page.text)
    assert "issuing_ca" in display.to_text(report)
    assert "LocalMachine\\\\CA" in report._repr_markdown_()  # backslash escaped in Markdown
