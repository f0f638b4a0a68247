"""Run every benchmark in bench/ and print its table: `make bench`.

Each bench script prints its own table with the target next to the measurement; this runner only
runs them in turn (one at a time, so they do not compete for the machine's cores) and reports which
ones failed to run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all.py", "compare_proposers.py"}  # compare_proposers needs two run directories


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in SKIP and not p.name.startswith("_"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
        print(f"({script.name}: {time.monotonic() - started:.1f}s, exit {done.returncode})", flush=True)
        if done.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
