"""Startup cost: ``import sectigo_chain`` and ``sectigo-chain --help`` next to ``python -c pass``.

Each command runs ``--runs`` times in a fresh interpreter (after one warm-up run, so the OS
file cache is warm for all of them alike); the median wall time is printed with its ratio to
``python -c pass`` measured in the same run. Goal: under 3x. Also printed: which heavy modules
(pypsrp, cryptography, pydantic, requests) each command loaded, from ``sys.modules``.

``sectigo-chain`` is not installed here: its row runs the wrapper pip writes as the console
script. ``PYTHONDONTWRITEBYTECODE`` is dropped for the runs (an installed package has compiled
bytecode; the warm-up run writes what is stale).

    PYTHONPATH=. python benchmarks/bench_startup.py [--runs 21]

It also times ``sectigo-chain check`` of one loopback endpoint (served from this process, one
lab root as the profile) against the goal of issue 15: under 120 ms above ``python -c pass``
(the script exits 1 when it is missed), and breaks down what ``check`` imports with
``python -X importtime`` (median self time per group of modules over the runs: ours,
pydantic and what it pulls in, cryptography and what it pulls in, ``ssl``, the rest of the
standard library).
"""

from __future__ import annotations

import argparse
import os
import resource
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
from sectigo_chain.cli.main import console
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(console())
"""
HEAVY = ("pypsrp", "cryptography", "pydantic", "requests", "tenacity", "asn1crypto", "OpenSSL")
_PROBE = (
    "import sys, atexit; atexit.register(lambda: sys.stderr.write("
    "'MODULES ' + ','.join(m for m in {heavy!r} if m in sys.modules) + '\\n'))"
)


def _main_code(*argv: str) -> str:
    return (
        f"import sys; sys.argv = ['sectigo-chain', *{list(argv)!r}]\n"
        "from sectigo_chain.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    )


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``cmd``; CPU (user + system, from ``getrusage``) is
    steadier than wall time on a loaded machine."""
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm-up
    times, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def _heavy(code: str, env: dict[str, str]) -> str:
    probe = _PROBE.format(heavy=HEAVY) + "\n" + code
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    for line in out.stderr.splitlines():
        if line.startswith("MODULES "):
            return line[len("MODULES ") :] or "none"
    return "?"


CHECK_GOAL_MS = 120.0
_GROUPS = {
    "pydantic": "pydantic (with pydantic_core, typing_extensions, annotated_types, "
    "importlib.metadata ...)",
    "cryptography": "cryptography (with what it imports)",
    "sectigo_chain": "sectigo_chain (our modules, self time)",
    "ssl": "ssl (with _ssl)",
    "other": "the rest of the standard library (argparse, json, logging, socket ...)",
}
_PYDANTIC = ("pydantic", "pydantic_core", "typing_extensions", "annotated_types",
             "typing_inspection")  # fmt: skip


def _group(name: str) -> str | None:
    top = name.split(".")[0]
    if top in _PYDANTIC:
        return "pydantic"
    if top in ("cryptography", "sectigo_chain"):
        return top
    if top in ("ssl", "_ssl"):
        return "ssl"
    return None


def importtime(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Self time (ms) per group of what ``cmd`` imports, from ``python -X importtime``: a
    module outside the groups is counted in the group of the module that imported it when
    that is pydantic, cryptography or ssl (``importlib.metadata`` under pydantic ...), else
    in ``other``."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    rows: list[tuple[int, int, str]] = []  # (depth, self us, name); children before parents
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "self [us]" in line:
            continue
        field = parts[2].rstrip()
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        rows.append((depth, int(parts[0].split(":")[1]), field.strip()))
    totals = dict.fromkeys(_GROUPS, 0.0)
    parents: dict[int, str] = {}  # depth -> group of the module being imported at that depth
    for depth, self_us, name in reversed(rows):  # parents first
        group = _group(name)
        if group is None:
            inherited = parents.get(depth - 1, "other")
            group = inherited if inherited in ("pydantic", "cryptography", "ssl") else "other"
        parents[depth] = group
        totals[group] += self_us / 1000
    return totals


def _check_case(tmp: Path) -> tuple[list[str], object]:
    """``sectigo-chain check`` of one loopback endpoint (a started server is returned too)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.testing.lab import default_lab
    from sectigo_chain.testing.tls_servers import LoopbackTLSServer

    lab = default_lab()
    leaf = lab.issue_leaf(["www.example.test"])
    server = LoopbackTLSServer(lab.served_chain(leaf, "cross"), leaf.key)
    server.start()
    bundle = tmp / "lab-legacy.pem"
    bundle.write_bytes(lab.usertrust_rsa.cert.public_bytes(Encoding.PEM))
    argv = ["check", f"127.0.0.1:{server.port}", "--servername", "www.example.test",
            "--profile", f"lab-legacy={bundle}", "--json"]  # fmt: skip
    return argv, server


def main() -> int:
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
    check_argv, server = _check_case(wrapper.parent)
    check_cmd = [py, "-m", "sectigo_chain", *check_argv]
    cases.append(("python -m sectigo_chain check 127.0.0.1:PORT --json (one endpoint)",
                  check_cmd, _main_code(*check_argv)))  # fmt: skip
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load "
          f"{os.getloadavg()[0]:.2f}; median of {args.runs} runs")  # fmt: skip
    print("| command | median ms | x `python -c pass` | CPU ms | heavy modules loaded |")
    print("|---|---|---|---|---|")
    base = base_cpu = 0.0
    check_ms = check_cpu = 0.0
    for label, cmd, code in cases:
        median, cpu = _time(cmd, args.runs, env)
        base, base_cpu = base or median, base_cpu or cpu
        heavy = _heavy(code, env) if code else "(not probed)"
        print(f"| `{label}` | {median * 1000:.1f} | {median / base:.2f} | {cpu * 1000:.1f} "
              f"| {heavy} |")  # fmt: skip
        if cmd is check_cmd:
            check_ms, check_cpu = (median - base) * 1000, (cpu - base_cpu) * 1000
    groups = [importtime([py, "-X", "importtime", *check_cmd[1:]], env) for _ in range(5)]
    server.close()  # type: ignore[attr-defined]
    print("\n`check` of one endpoint, imports by group (`-X importtime` self times, which "
          "overstate them; median of 5):\n")  # fmt: skip
    print("| group | ms |\n|---|---|")
    for key, label in _GROUPS.items():
        print(f"| {label} | {statistics.median(g[key] for g in groups):.1f} |")
    total = statistics.median(sum(g.values()) for g in groups)
    print(f"| total | {total:.1f} |")
    met = check_ms < CHECK_GOAL_MS
    print(f"\n`check` of one endpoint: {check_ms:.1f} ms above `python -c pass` "
          f"(goal: under {CHECK_GOAL_MS:.0f} ms): {'met' if met else 'NOT met'}; "
          f"CPU {check_cpu:.1f} ms above it")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
