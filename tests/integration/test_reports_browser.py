"""The HTML reports in a real browser: headless Chromium (Debian's ``chromium``, installed by
.ci/run) loads the fleet page of 1,000 hosts and a check report at 1280 CSS pixels wide, with
every ``<details>`` opened, and the test asserts that nothing sticks out past the viewport (no
horizontal scrolling) and that the page logged no console error.

The fleet rows come from a real rollout of simulated hosts (one per outcome) repeated under new
names (tests/integration/_fleet_sample.py); the check report is a real check of a simulated
host's loopback TLS listener.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from _chromium import PageCheck, check_page, chromium_binary
from _fleet_sample import sample_report

from sectigo_chain.display.render import to_html
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.tls.check import check_endpoint

pytestmark = pytest.mark.slow
WIDTH = 1280


def _load(path: Path) -> PageCheck:
    if chromium_binary() is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium (as .ci/run does)")
    return check_page(path, width=WIDTH)


def _fits(page: PageCheck) -> None:
    assert page.inner_width == WIDTH
    assert page.overflowing == []
    assert page.scroll_width <= WIDTH
    assert page.console_errors == []


def test_fleet_report_of_1000_hosts_fits_1280px_without_console_errors(tmp_path: Path) -> None:
    report = sample_report(1000, tmp_path)
    outcomes = {row.outcome for row in report.hosts}
    assert {"applied", "unchanged", "chain fails", "refused", "rolled back", "unreachable"} <= (
        outcomes
    )
    path = tmp_path / "fleet.html"
    path.write_text(report.to_html(), encoding="utf-8")
    page = _load(path)
    _fits(page)
    assert page.details == 1000
    assert page.title == "sectigo-chain fleet apply"


def test_check_report_fits_1280px_without_console_errors(tmp_path: Path) -> None:
    with SimulatedHost("broken-r46") as host:
        listener = host.start_tls()
        ip, port, name = listener.address_for("Default Web Site")
        leaf = host.served_chain("Default Web Site")[0]
        at = leaf.not_valid_before_utc + dt.timedelta(days=1)
        report = check_endpoint(ip, port, servername=name, catalog=host.catalog, at=at)
    assert report.verdict == "fail"
    path = tmp_path / "check.html"
    path.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>check</title>'
        f"</head><body>{to_html(report)}</body></html>\n",
        encoding="utf-8",
    )
    _fits(_load(path))
