"""What the runtime audit (sandbox/audit) costs: the bundled target's own commands in one real
sandbox per backend, each run with the harness's audit hook and without it (the bare floor: the same
command with the hook's variables taken out of its environment), alternated so a busy machine
slows both alike.

    python bench/runtime_audit_cost.py [--backends bwrap docker] [--repeat 7]

Rows: an interpreter that starts and ends (`python -c pass`: the hook's own start-up), the target's
train command at its full budget, and its predict command on 1,000 rows. Figures are the median
wall milliseconds per run inside the sandbox (the driver's own timing of ten runs in a row), and what
the audit adds.
Target: at most 25 ms added per command (an evaluation of three seeds runs about twenty train and
predict commands, its controls included: half a second on an evaluation of ten to twenty).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.target import TargetSpec  # noqa: E402
from sandbox.base import SandboxConfig  # noqa: E402

TARGET = ROOT / "target_repo"
BARE = "unset PYTHONPATH RSI_AUDIT_FD; "
"""The same command without the audit: the hook installs only when the driver's variables say so."""


def backend_for(name: str, run_id: str):  # type: ignore[no-untyped-def]
    if name == "docker":
        from sandbox.docker_backend import DockerBackend

        return DockerBackend(SandboxConfig(), image="rsi-sandbox:latest", run_id=run_id)
    from sandbox.bwrap_backend import BwrapBackend

    return BwrapBackend(SandboxConfig(), image="", run_id=run_id)


def measure(backend: str, repeat: int) -> list[tuple[str, float, float]]:
    spec = TargetSpec.load(TARGET)
    train = (
        "{ mkdir -p /tmp/out && "
        + spec.train_command(seed=0, out="/tmp/out", steps=spec.budget.steps)
        + "; }"
    )
    predict = spec.commands.predict.format(
        out="/tmp/out", inputs="/tmp/inputs.npy", predictions="/tmp/pred.npy"
    )
    rows = {
        "python -c pass": "python3 -c pass",
        "train (full budget)": train,
        "predict (1,000 rows)": predict,
    }
    times: dict[str, dict[str, list[float]]] = {name: {"on": [], "off": []} for name in rows}
    with tempfile.TemporaryDirectory(prefix="rsi-bench-audit-") as work:
        workspace = Path(work) / "ws"
        import shutil

        shutil.copytree(TARGET, workspace)
        with backend_for(backend, f"bench-audit-{backend}").open(workspace, None, "bench") as session:
            buffer = io.BytesIO()
            np.save(buffer, np.random.default_rng(0).uniform(-1, 1, size=(1000, 8)))
            session.write_file("/tmp/inputs.npy", buffer.getvalue())
            session.exec(train, 120)  # the model predict reads, and a warm page cache for both
            for _ in range(repeat):
                for name, command in rows.items():
                    for mode in ("on", "off"):
                        # Ten runs per reading: the driver times in hundredths of a second.
                        prefix = BARE if mode == "off" else ""
                        result = session.exec(
                            f"for i in 1 2 3 4 5 6 7 8 9 10; do {prefix}{command} || exit 1; done", 600
                        )
                        if result.exit_code != 0:
                            raise SystemExit(f"{backend}: {name} ({mode}) failed: {result.output[-500:]}")
                        if mode == "on" and not result.audit:
                            raise SystemExit(f"{backend}: {name} ran without its audit record")
                        times[name][mode].append(result.duration_s * 100)
    return [(name, statistics.median(t["off"]), statistics.median(t["on"])) for name, t in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"], choices=["bwrap", "docker"])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command in each mode (median)")
    args = parser.parse_args()
    print("| backend | command | without audit (ms) | with audit (ms) | added |")
    print("|---|---|---|---|---|")
    for backend in args.backends:
        for name, off, on in measure(backend, args.repeat):
            print(
                f"| {backend} | {name} | {off:.0f} | {on:.0f} | {on - off:+.0f} ms ({(on - off) / off:+.1%}) |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
