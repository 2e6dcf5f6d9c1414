"""FleetReport: exit codes, JSON round trip, escaping in HTML and text."""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.report import ChainCheck, FleetReport, HostError, HostRow

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
HOSTILE = "<script>alert('x')</script>&\"'"


def _row(name: str, status: str, **extra: Any) -> HostRow:
    return HostRow.model_validate({"name": name, "target": "sim://x", "status": status, **extra})


def _report(*rows: HostRow, **extra: Any) -> FleetReport:
    base = {"mode": "apply", "started_at": NOW, "concurrency": 2, "canary": True,
            "batch_size": None, "stop_on_failure": True}  # fmt: skip
    return FleetReport.model_validate({**base, **extra, "hosts": rows})


def _unreachable(name: str) -> HostRow:
    error = HostError(type="ConnectionFailed", message="refused", unreachable=True)
    return _row(name, "failed", error=error)


@pytest.mark.parametrize(
    ("rows", "stopped", "code"),
    [
        ([("a", "applied"), ("b", "unchanged")], False, 0),
        ([("a", "applied"), ("b", "rolled_back")], True, 4),
        ([("a", "applied"), ("b", "failed")], False, 1),
        ([("a", "applied"), ("b", "skipped")], True, 1),
        ([("a", "checked"), ("b", "planned")], False, 0),
    ],
)
def test_exit_codes(rows: list[tuple[str, str]], stopped: bool, code: int) -> None:
    assert _report(*[_row(n, s) for n, s in rows], stopped=stopped).exit_code() == code


def test_exit_code_3_only_when_every_tried_host_was_unreachable() -> None:
    skipped = _row("c", "skipped")
    assert _report(_unreachable("a"), _unreachable("b"), skipped, stopped=True).exit_code() == 3
    assert _report(_unreachable("a"), _row("b", "applied")).exit_code() == 1
    incomplete = _row("d", "failed", rollback_complete=False)
    assert _report(_unreachable("a"), incomplete).exit_code() == 4


def test_json_round_trip_and_damaged_reports(tmp_path: Path) -> None:
    check = ChainCheck(source="tls", endpoint="h:443", verdict="fail", findings=("X (error)",))
    report = _report(_row("a", "applied", before=check, timings={"total": 1.5}), stopped=False)
    path = report.write(tmp_path / "r.json")
    assert FleetReport.load(path) == report
    assert json.loads(path.read_text())["counts"] == {"applied": 1}
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a sectigo-chain fleet report"):
        FleetReport.load(tmp_path / "other.json")
    doc = json.loads(path.read_text())
    doc["hosts"][0]["status"] = "exploded"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="damaged"):
        FleetReport.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not found"):
        FleetReport.load(tmp_path / "missing.json")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_every_host_supplied_value() -> None:
    check = ChainCheck(source="tls", endpoint=HOSTILE, verdict="fail", error=HOSTILE)
    row = _row("a", "failed", site=HOSTILE, hostname=HOSTILE, before=check, note=HOSTILE,
               warnings=(HOSTILE,), error=HostError(type="X", message=HOSTILE),
               verify_notes=(HOSTILE,))  # fmt: skip
    report = _report(row, stopped=True, stop_reason=HOSTILE, inventory=HOSTILE)
    page = report.to_html()
    assert "<script>" not in page
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags
    assert HOSTILE in "".join(parser.text)  # shown, as text


def test_text_rendering_has_a_line_per_host() -> None:
    report = _report(_row("a", "applied"), _row("b", "skipped", note="rollout stopped: b"))
    lines = str(report).splitlines()
    assert lines[0].startswith("fleet apply: 2 host(s)")
    assert lines[1].split()[:2] == ["a", "applied"]
    assert "rollout stopped" in lines[2]


def _kinds_report() -> FleetReport:
    failing = ChainCheck(source="tls", endpoint="h:443", verdict="fail")
    refused = HostError(type="PlanRefused", message="R46 is in .GroupPolicy")
    crashed = HostError(type="ScriptFailed", message="Import-Certificate failed")
    warning = "Automatic Root Update is on: the removed root may come back"
    return _report(
        _row("ok1", "applied", warnings=(warning,)),
        _row("chain", "failed", before=failing),
        _unreachable("down"),
        _row("gpo", "failed", error=refused, warnings=(warning,)),
        _row("undone", "rolled_back", error=crashed, rollback_complete=True, journal="j.json"),
        _row("half", "failed", error=crashed, rollback_complete=False, journal="h.json"),
        _row("later", "skipped", note="rollout stopped"),
        stopped=True,
        stop_reason="undone failed",
    )


def test_outcomes_tell_failure_kinds_apart_and_say_what_to_do() -> None:
    report = _kinds_report()
    outcomes = {row.name: row.outcome for row in report.hosts}
    assert outcomes == {
        "ok1": "applied", "chain": "chain fails", "down": "unreachable", "gpo": "refused",
        "undone": "rolled back", "half": "rollback incomplete", "later": "skipped",
    }  # fmt: skip
    assert report.host("half").remedy == "restore by hand: sectigo-chain rollback h.json"
    assert "WinRM" in report.host("down").remedy
    assert report.host("ok1").remedy == ""
    lines = str(report).splitlines()
    assert lines[6].endswith("-> restore by hand: sectigo-chain rollback h.json")  # "half"
    assert "-> " not in lines[1].split("action(s)")[1]  # "ok1": nothing to do


class _Sections(HTMLParser):
    """The order of the page's sections and what each holds (headings, tiles, items)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.tiles: list[str] = []
        self.attention: list[str] = []
        self.details = 0
        self._where = ""
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "h2":
            self._heading = True
        elif tag == "div" and cls == "tile":
            self._where = "tile"
            self.tiles.append("")
            if "counts" not in self.order:
                self.order.append("counts")
        elif tag == "ul" and cls == "attention":
            self._where = "attention"
        elif tag == "li" and self._where == "attention":
            self.attention.append("")
        elif tag == "details":
            self.details += 1
            self._where = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._heading = False
        elif (tag, self._where) in (("ul", "attention"), ("div", "tile")):
            self._where = ""

    def handle_data(self, data: str) -> None:
        if self._heading:
            self.order.append(data.split(" (")[0])
        elif self._where == "tile" and self.tiles:
            self.tiles[-1] += data
        elif self._where == "attention" and self.attention:
            self.attention[-1] += data


def test_html_opens_with_counts_then_attention_and_says_each_warning_once() -> None:
    page = _kinds_report().to_html()
    sections = _Sections()
    sections.feed(page)
    assert sections.order == ["counts", "Needs attention", "Warnings", "Hosts"]
    assert sections.tiles == [
        "1applied", "1chain fails", "1unreachable", "1refused", "1rolled back",
        "1rollback incomplete", "1skipped",
    ]  # fmt: skip
    assert len(sections.attention) == 5  # every failed host, not the applied or skipped one
    half = next(item for item in sections.attention if item.startswith("half"))
    assert "to do: restore by hand: sectigo-chain rollback h.json" in half
    assert sections.details == 7  # one compact entry per host, details folded
    assert page.count("Automatic Root Update is on") == 1  # two hosts, said once
    assert "(2 host(s): ok1, gpo)" in page
    assert "<table" not in page
