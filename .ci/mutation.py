"""Mutation testing of the core with mutmut (configuration: [tool.mutmut] in pyproject.toml).

    .venv/bin/python .ci/mutation.py full      # every mutant of the core (hours on 2 cores)
    .venv/bin/python .ci/mutation.py sample    # CI: a fixed, seeded sample (about 10 minutes)
    .venv/bin/python .ci/mutation.py report    # scores from the results already in mutants/
    .venv/bin/python .ci/mutation.py full --module sectigo_chain.x509.catalog  # one module
    .venv/bin/python .ci/mutation.py full --module sectigo_chain.x509.catalog --survivors

Both runs print killed / (non-equivalent mutants) per module and fail (exit 1) when a module
scores below its floor in .ci/mutation-floors.json ("default" for the others). Mutants listed
in .ci/mutation-equivalent.txt (one name a line, ``#`` comments give the reason) are
equivalent: they cannot change behaviour and are left out of the score. Results are kept in
mutants/ (mutmut's cache, ignored by git); ``sample`` always starts afresh, ``full`` and
``report`` reuse it (pass ``--fresh`` after changing tests).

``--module PREFIX`` (repeatable; a dotted module name or a package prefix) limits ``full`` and
``report`` to the mutants of those modules: ``full`` then runs every one of them again (mutmut
re-runs mutants it is given by name even when it has a result), and scores only them.
``--survivors`` makes ``full`` run again only the mutants that survived in mutants/' last
results, and those without a result (mutmut drops the results of a function that changed), of
the chosen modules: the quick check after writing tests for them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / ".ci" / "mutation-equivalent.txt"
FLOORS = ROOT / ".ci" / "mutation-floors.json"
SEED = 20  # the sample is the same on every run (and every machine)
PER_MODULE = 16
# A mutant that certainly exists (ps_quote's first mutation): running it alone makes mutmut
# generate every mutant and collect its test statistics, so the sample can be drawn.
BOOTSTRAP = "sectigo_chain.templates.render.x_ps_quote__mutmut_1"
KILLED = {1, 3, 36, 24, -24, 152, 255, -9, -11}  # tests failed, timed out or crashed
SURVIVED = {0, 5, 33}  # tests passed, or no test covers the mutant
SEGFAULT = -11  # how subprocess reports a process killed by SIGSEGV


def _mutmut() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    return str(exe) if exe.exists() else "mutmut"


def _run_mutmut(names: list[str]) -> None:
    cmd = [_mutmut(), "run", *names]
    # A crash prints a Python traceback of every thread (faulthandler) on stderr, shown below.
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True, env=env)
    if result.returncode == 0:
        return
    if result.returncode == SEGFAULT and _finished(names):
        # mutmut's main process sometimes dies of a segmentation fault at interpreter exit,
        # after it printed "Mutant results" and wrote every result (faulthandler: "<no Python
        # frame>" in the main thread). The results are complete, so they are used; a crash
        # before the end leaves mutants without a result and fails below.
        print(
            f"note: mutmut exited with a segmentation fault (exit {SEGFAULT}) after it had "
            "recorded a result for every mutant it was asked to run; the results are used",
            file=sys.stderr,
        )
        return
    sys.stdout.write(result.stdout[-4000:])
    sys.stderr.write(result.stderr[-4000:])
    raise SystemExit(f"mutmut run failed with exit code {result.returncode}")


def _finished(names: list[str]) -> bool:
    """Whether mutmut recorded an exit code for each of ``names`` (every mutant if empty).

    A name may be an fnmatch pattern (``--module`` passes ``PREFIX.*``), as for mutmut.
    """
    codes = results()
    wanted = [n for n in codes if not names or any(fnmatch.fnmatchcase(n, p) for p in names)]
    exact = [n for n in names if not any(c in n for c in "*?[")]
    return bool(wanted) and all(codes.get(n) is not None for n in [*wanted, *exact])


def in_modules(name: str, modules: list[str]) -> bool:
    """Whether mutant ``name`` belongs to one of ``modules`` (dotted prefixes; all if empty)."""
    return not modules or any(name.startswith(prefix.rstrip(".") + ".") for prefix in modules)


def results() -> dict[str, int | None]:
    """Every known mutant and its exit code (None: not run yet), from mutmut's meta files."""
    out: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text("utf-8"))
        out.update(data.get("exit_code_by_key", {}))
    return out


def module_of(name: str) -> str:
    return name.rsplit(".", 1)[0]


def equivalent() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text("utf-8").splitlines()
    return {line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()}


def draw_sample(names: list[str], per_module: int, seed: int) -> list[str]:
    by_module: dict[str, list[str]] = {}
    for name in sorted(names):
        by_module.setdefault(module_of(name), []).append(name)
    rng = random.Random(seed)
    sample: list[str] = []
    for module in sorted(by_module):
        pool = by_module[module]
        sample += sorted(rng.sample(pool, min(per_module, len(pool))))
    return sample


def score(names: list[str], codes: dict[str, int | None]) -> int:
    floors = json.loads(FLOORS.read_text("utf-8")) if FLOORS.exists() else {}
    default = float(floors.get("default", 90))
    skip = equivalent()
    per: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for name in names:
        code = codes.get(name)
        counts = per.setdefault(module_of(name), Counter())
        if name in skip:
            counts["equivalent"] += 1
        elif code is None:
            counts["not run"] += 1
        elif code in KILLED:
            counts["killed"] += 1
        else:
            counts["survived"] += 1
            survivors.append(name)
    failed = False
    print(f"{'module':<36} {'killed':>7} {'of':>5} {'score':>7} {'floor':>6}  equivalent")
    total_killed = total = 0
    for module in sorted(per):
        c = per[module]
        counted = c["killed"] + c["survived"]
        pct = 100.0 * c["killed"] / counted if counted else 100.0
        floor = float(floors.get(module, default))
        low = pct < floor
        failed |= low
        total_killed += c["killed"]
        total += counted
        mark = "  BELOW FLOOR" if low else ""
        extra = f"  ({c['not run']} not run)" if c["not run"] else ""
        # a module none of whose mutants has a result yet (report during or after another
        # module's run) has no score: "n/a", not 100 %
        shown = f"{pct:>6.1f}%" if counted or not c["not run"] else f"{'n/a':>7}"
        print(
            f"{module:<36} {c['killed']:>7} {counted:>5} {shown} {floor:>5.0f}%"
            f"  {c['equivalent']}{extra}{mark}"
        )
    if total:
        print(f"{'all':<36} {total_killed:>7} {total:>5} {100.0 * total_killed / total:>6.1f}%")
    if survivors:
        print("\nsurvivors (`.venv/bin/mutmut show NAME` shows the change):")
        for name in survivors:
            print("  " + name)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["full", "sample", "report"])
    parser.add_argument("--per-module", type=int, default=PER_MODULE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--fresh", action="store_true", help="delete mutants/ first")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="PREFIX",
        help="full/report: only the mutants of this module or package (dotted; repeatable)",
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="full: run again only the last survivors (and mutants without a result)",
    )
    args = parser.parse_args(argv)
    if args.mode == "sample" and (args.module or args.survivors):
        parser.error("--module and --survivors apply to full and report, not to sample")
    if args.survivors and (args.mode != "full" or args.fresh):
        parser.error("--survivors needs full and the results kept in mutants/ (no --fresh)")
    modules: list[str] = args.module
    start = time.monotonic()
    # The sample always starts afresh: mutmut keeps its copy of the tests in mutants/ and does
    # not refresh files that changed since, so cached results could be for old tests.
    if (args.fresh or args.mode == "sample") and MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    if args.mode == "full" and args.survivors:
        codes = results()
        skip = equivalent()
        again = sorted(
            name
            for name, code in codes.items()
            if in_modules(name, modules) and (code is None or code in SURVIVED) and name not in skip
        )
        if again:
            print(f"running again {len(again)} survivors and mutants without a result")
            _run_mutmut(again)
        names = sorted(n for n in results() if in_modules(n, modules))
    elif args.mode == "full":
        # mutmut matches mutant names with fnmatch: PREFIX.* is every mutant of the module.
        _run_mutmut([prefix.rstrip(".") + ".*" for prefix in modules])
        names = sorted(n for n in results() if in_modules(n, modules))
    elif args.mode == "sample":
        _run_mutmut([BOOTSTRAP])
        names = draw_sample(list(results()), args.per_module, args.seed)
        print(f"sample: {len(names)} mutants (seed {args.seed}, {args.per_module} per module)")
        _run_mutmut(names)
    else:
        names = sorted(n for n in results() if in_modules(n, modules))
    if modules and not names:
        raise SystemExit(f"no mutant of {', '.join(modules)} in mutants/ (a module name?)")
    status = score(names, results())
    print(f"\n{args.mode} run: {time.monotonic() - start:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
