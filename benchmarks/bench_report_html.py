"""Fleet HTML report benchmark: size and render time of the page for 10, 100 and 1,000 hosts.

The rows come from one real rollout of seven simulated hosts (one per outcome: applied,
unchanged, drift, stale cache, Group Policy refusal, rolled back, unreachable), repeated under
new names (tests/integration/_fleet_sample.py). Printed per size: the page's bytes (and per
host), the best of ``--repeat`` render times, and the ratio of render time per host against
the 10-host baseline measured in the same process (1.0 = linear).

    PYTHONPATH=. python benchmarks/bench_report_html.py
    PYTHONPATH=. python benchmarks/bench_report_html.py --sizes 1000 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from _fleet_sample import sample_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = sample_report(max(args.sizes), Path(folder))
    print(f"{'hosts':>6} {'bytes':>10} {'bytes/host':>10} {'render s':>9} {'ms/host':>8} ratio")
    baseline: float | None = None
    for size in args.sizes:
        report = base.model_copy(update={"hosts": base.hosts[:size]})
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            page = report.to_html()
            best = min(best, time.perf_counter() - started)
        per_host = best / size
        baseline = per_host if baseline is None else baseline
        data = len(page.encode("utf-8"))
        print(
            f"{size:>6} {data:>10,} {data // size:>10,} {best:>9.3f} {per_host * 1000:>8.3f} "
            f"{per_host / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
