"""`status.json`: where a run is, replaced atomically after every event for a program polling it.

status = RunStatus(config)
status.write(event, state, run_state="running", generation=3, wall_used_s=12.5, last_hash=h)
"""

from __future__ import annotations

import os

from core.contracts import utc_now
from core.trajectory import Event
from rsi.config import RunConfig
from rsi.progress import write_status
from rsi.state import LoopState


class RunStatus:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self._last: dict[str, str | None] = {"verdict": None, "decision": None}

    def write(
        self,
        event: Event,
        state: LoopState,
        *,
        run_state: str,
        generation: int,
        wall_used_s: float,
        last_hash: str,
    ) -> None:
        config, data = self.config, event.data
        if event.kind in self._last:
            self._last[event.kind] = f"generation {event.generation}: {data.get(event.kind)}"
        write_status(
            config.run_dir,
            {
                "run_id": config.run_id,
                "state": data.get("status", run_state) if event.kind == "run_finished" else run_state,
                "pid": os.getpid(),
                "updated_at": utc_now(),
                "generation": event.generation if event.generation is not None else generation,
                "generations_planned": config.generations,
                "generations_decided": len(state.history),
                "phase": event.kind,
                "accepted": state.accepted,
                "baseline_metric": state.baseline_metric,
                "best_metric": state.best,
                "last_verdict": self._last["verdict"],
                "last_decision": self._last["decision"],
                "budgets": {
                    "wall_s": {"used": round(wall_used_s, 1), "limit": config.max_wall_s},
                    "dollars": {"used": round(state.usage.dollars, 4), "limit": config.max_dollars},
                },
                "usage": state.usage.model_dump(),
                "trajectory": {"events": event.seq + 1, "last_seq": event.seq, "last_hash": last_hash},
                "message": data.get("reason") or data.get("message") or "",
            },
        )
