"""Startup cost: ``import sectigo_chain`` and ``sectigo-chain --help`` next to ``python -c pass``.

Each command runs ``--runs`` times in a fresh interpreter (after one warm-up run, so the OS
file cache is warm for all of them alike); the median wall time is printed with its ratio to
``python -c pass`` measured in the same run. Goal: under 3x. Also printed: which heavy modules
(pypsrp, cryptography, pydantic, requests) each command loaded, from ``sys.modules``.

``sectigo-chain`` is not installed here: its row runs the wrapper pip writes as the console
script. ``PYTHONDONTWRITEBYTECODE`` is dropped for the runs (an installed package has compiled
bytecode; the warm-up run writes what is stale).

    PYTHONPATH=. python benchmarks/bench_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CONSOLE_SCRIPT = """\
# -*- coding: utf-8 -*-
import re
import sys
from sectigo_chain.cli.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
HEAVY = ("pypsrp", "cryptography", "pydantic", "requests", "tenacity", "asn1crypto")
_PROBE = (
    "import sys, atexit; atexit.register(lambda: sys.stderr.write("
    "'MODULES ' + ','.join(m for m in {heavy!r} if m in sys.modules) + '\\n'))"
)


def _main_code(*argv: str) -> str:
    return (
        f"import sys; sys.argv = ['sectigo-chain', *{list(argv)!r}]\n"
        "from sectigo_chain.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    )


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _heavy(code: str, env: dict[str, str]) -> str:
    probe = _PROBE.format(heavy=HEAVY) + "\n" + code
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    for line in out.stderr.splitlines():
        if line.startswith("MODULES "):
            return line[len("MODULES ") :] or "none"
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", os.getcwd())
    # An installed package has its bytecode compiled; here the warm-up run writes any stale
    # __pycache__ file, else every run would compile the modules edited since the last one.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    py = sys.executable
    cases: list[tuple[str, list[str], str]] = [
        ("python -c pass", [py, "-c", "pass"], "pass"),
        ('python -c "import argparse" (floor for --help)', [py, "-c", "import argparse"],
         "import argparse"),
        ('python -c "import sectigo_chain"', [py, "-c", "import sectigo_chain"],
         "import sectigo_chain"),
        ("python -m sectigo_chain --help", [py, "-m", "sectigo_chain", "--help"],
         _main_code("--help")),
    ]  # fmt: skip
    # What pip writes as the ``sectigo-chain`` console script (it is not installed here).
    wrapper = Path(tempfile.mkdtemp()) / "sectigo-chain"
    wrapper.write_text(_CONSOLE_SCRIPT, encoding="utf-8")
    cases += [
        ("sectigo-chain --help (pip's console-script wrapper, run by python)",
         [py, str(wrapper), "--help"], _main_code("--help")),
        ("python -m sectigo_chain plan --help (imports one command module)",
         [py, "-m", "sectigo_chain", "plan", "--help"], _main_code("plan", "--help")),
    ]  # fmt: skip
    script = shutil.which("sectigo-chain")
    if script:
        cases.append(("sectigo-chain --help (installed console script)", [script, "--help"], ""))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load "
          f"{os.getloadavg()[0]:.2f}; median of {args.runs} runs")  # fmt: skip
    print("| command | median ms | x `python -c pass` | heavy modules loaded |")
    print("|---|---|---|---|")
    base = None
    for label, cmd, code in cases:
        median = _time(cmd, args.runs, env)
        base = base or median
        heavy = _heavy(code, env) if code else "(not probed)"
        print(f"| `{label}` | {median * 1000:.1f} | {median / base:.2f} | {heavy} |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
