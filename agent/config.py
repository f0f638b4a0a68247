"""Each proposer's own settings, validated; the run configuration (`rsi.config`) holds them and the
proposer registry (`rsi.registry.PROPOSERS`) builds the chosen proposer from its own."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ClaudeConfig(BaseModel):
    """Settings of the Claude proposer (used when --proposer claude, or whenever an API key is set)."""

    model: str = "claude-sonnet-5-5"
    """Model id; any id the Messages API accepts."""
    base_url: str | None = None
    """Messages-compatible endpoint; None uses the SDK default (or ANTHROPIC_BASE_URL)."""
    max_tokens: int = Field(default=4096, gt=0)
    """Output tokens per model call."""
    temperature: float | None = None
    """Sampling temperature; None leaves the API default."""
    max_steps: int = Field(default=40, gt=0)
    """Model calls per generation."""
    max_generation_tokens: int = Field(default=400_000, gt=0)
    """Input + output tokens per generation."""
    max_generation_dollars: float = Field(default=2.0, gt=0)
    """Dollars per generation."""
    max_generation_seconds: float = Field(default=900.0, gt=0)
    """Wall time per generation."""
    tool_timeout_s: float = Field(default=300.0, gt=0)
    """Wall-time limit of one bash command in the exploration sandbox."""
    request_timeout_s: float = Field(default=600.0, gt=0)
    """Time limit of one Messages API request."""
    sdk_max_retries: int = Field(default=8, ge=0)
    """Retries of one model call on 429, 5xx, overloaded, timeouts and dropped connections — the
    SDK's own (exponential backoff with jitter up to 8 s, `retry-after` honoured); once they are
    spent the run pauses, to be continued with `rsi resume`."""


class OfflineConfig(BaseModel):
    """Settings of the offline baseline proposer (--proposer offline)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    """Seed of the order in which knob moves are tried."""


class ReplayConfig(BaseModel):
    """Settings of the replay proposer, which feeds a recorded run's proposals back (`rsi replay --verify`)."""

    model_config = ConfigDict(extra="forbid")

    trajectory: Path | None = None
    """The trajectory whose recorded proposals are replayed (--replay-from); required."""
