"""The Claude proposer's settings, validated; chosen by the run configuration in `rsi.config`."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
