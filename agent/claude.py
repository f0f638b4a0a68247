"""The Claude proposer: a tool-using agent that explores the parent in its own sandbox and submits a patch.

    proposer = ClaudeProposer(config.claude, backend=backend, progress=observer.on_progress)
    proposal = proposer.propose(context, parent_tree)

Each generation is one agent loop over the Messages API (through the `anthropic` SDK): the model
reads the objective, the parent's measured results and the lineage history, calls bash and the text
editor in an exploration sandbox, and ends with `submit`. The proposal is the workspace's diff
against the parent, computed on the host. Limits (steps, tokens, dollars, wall time) end a
generation cleanly with the reason recorded; API faults are retried by the SDK alone (its backoff,
honouring `retry-after`), each retried call is noted in the transcript and the log, and an outage
that outlasts those retries raises ModelUnavailable so the loop pauses the run.

The transcript holds the exact model inputs and outputs (the setup once, then every user message
and every response) and every tool result, so `ReplayProposer` can re-execute the generation with
no network. The API key is read from the host's environment and never written anywhere.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import anthropic

from agent.config import ClaudeConfig
from agent.pricing import Price, price_for
from agent.prompts import NUDGE, SYSTEM_PROMPT, context_message
from agent.tools import TOOLS, ExplorationWorkspace, ToolOutcome, summarize_call
from core.contracts import ProgressCallback, Proposal, ProposalContext, Usage
from core.errors import ConfigError, ModelUnavailable
from sandbox.base import Backend

log = logging.getLogger(__name__)

EPHEMERAL = {"type": "ephemeral"}
RETRYABLE_STATUS = frozenset({408, 409, 429})


def _no_progress(phase: str, details: dict[str, Any]) -> None:
    pass


class ModelCall(Protocol):
    """One model step: the request (without model settings) in, the response as a plain dict out."""

    def __call__(self, request: dict[str, Any], step: int) -> dict[str, Any]: ...


def usage_of(reply: dict[str, Any], price: Price) -> Usage:
    raw = reply.get("usage") or {}
    tokens = {
        "input_tokens": int(raw.get("input_tokens") or 0),
        "output_tokens": int(raw.get("output_tokens") or 0),
        "cache_read_tokens": int(raw.get("cache_read_input_tokens") or 0),
        "cache_write_tokens": int(raw.get("cache_creation_input_tokens") or 0),
    }
    return Usage(**tokens, dollars=price.cost(**tokens), model_calls=1)


def cache_hit_rate(usage: Usage) -> float | None:
    """Share of prompt tokens read from the cache (None before any call)."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return round(usage.cache_read_tokens / prompt, 4) if prompt else None


def total_tokens(usage: Usage) -> int:
    return usage.input_tokens + usage.output_tokens + usage.cache_read_tokens + usage.cache_write_tokens


class AgentRun:
    """One generation's agent loop; the model is any ModelCall (the live API, or recorded replies)."""

    def __init__(
        self,
        config: ClaudeConfig,
        backend: Backend,
        model: ModelCall,
        proposer_name: str = "claude",
        progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.model = model
        self.proposer_name = proposer_name
        self.progress = progress or _no_progress
        self.price = price_for(config.model)

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        label = f"explore-gen-{context.generation:04d}"
        state = _RunState(time.monotonic(), label, context.generation)
        state.transcript.append(self._setup_entry())
        state.add_user(
            [{"type": "text", "text": context_message(context, parent_tree), "cache_control": EPHEMERAL}]
        )
        with ExplorationWorkspace(self.backend, parent_tree, label) as workspace:
            stop = self._loop(state, workspace)
            diff = workspace.diff()
        rationale, effect = state.submitted or (self._unsubmitted_rationale(state, stop), None)
        state.transcript.append(
            {
                "kind": "summary",
                "stop_reason": stop,
                "steps": state.steps,
                "usage": state.usage.model_dump(),
                "cache_hit_rate": cache_hit_rate(state.usage),
                "elapsed_s": round(time.monotonic() - state.started, 3),
                "explored": workspace.opened or bool(diff),
            }
        )
        return Proposal(
            diff=diff,
            rationale=rationale,
            claimed_effect=effect,
            proposer=self.proposer_name,
            transcript=state.transcript,
            usage=state.usage,
            stop_reason=stop,
        )

    def _setup_entry(self) -> dict[str, Any]:
        return {
            "kind": "setup",
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "system": system_blocks(),
            "tools": TOOLS,
            "limits": {
                "max_steps": self.config.max_steps,
                "max_generation_tokens": self.config.max_generation_tokens,
                "max_generation_dollars": self.config.max_generation_dollars,
                "max_generation_seconds": self.config.max_generation_seconds,
            },
            "price_per_mtok": {"input": self.price.input, "output": self.price.output},
        }

    def _loop(self, state: _RunState, workspace: ExplorationWorkspace) -> str:
        nudged = False
        while (limit := self._limit_hit(state)) is None:
            state.steps += 1
            self.progress("agent", state.details(summary=f"asking {self.config.model} (step {state.steps})"))
            reply = plain_text(self.model(request_for(state.messages), state.steps))
            usage = usage_of(reply, self.price)
            state.usage = state.usage + usage
            content = reply.get("content")
            state.transcript.append(
                {
                    "kind": "response",
                    "step": state.steps,
                    "id": reply.get("id"),
                    "content": content,
                    "stop_reason": reply.get("stop_reason"),
                    "usage": reply.get("usage") or {},
                    "dollars": round(usage.dollars, 6),
                    "elapsed_s": round(time.monotonic() - state.started, 3),
                }
            )
            blocks = content_blocks(content)
            state.messages.append({"role": "assistant", "content": blocks})
            tool_uses = [block for block in blocks if block.get("type") == "tool_use"]
            if not tool_uses:
                if nudged:
                    return "no_submit"
                nudged = True
                state.add_user([{"type": "text", "text": NUDGE}])
                continue
            results = [self._run_tool(state, workspace, block) for block in tool_uses]
            if state.submitted is not None:
                return "submitted"
            state.add_user(results)
        return limit

    def _limit_hit(self, state: _RunState) -> str | None:
        config = self.config
        if state.steps >= config.max_steps:
            return "steps"
        if total_tokens(state.usage) >= config.max_generation_tokens:
            return "tokens"
        if state.usage.dollars >= config.max_generation_dollars:
            return "dollars"
        if time.monotonic() - state.started >= config.max_generation_seconds:
            return "time"
        return None

    def _run_tool(
        self, state: _RunState, workspace: ExplorationWorkspace, block: dict[str, Any]
    ) -> dict[str, Any]:
        name, tool_input = str(block.get("name")), block.get("input")
        self.progress("agent", state.details(tool=name, summary=summarize_call(name, tool_input)))
        if name == "submit":
            outcome = self._submit(state, tool_input)
        else:
            remaining = self.config.max_generation_seconds - (time.monotonic() - state.started)
            outcome = workspace.run_tool(
                name, tool_input, timeout_s=min(self.config.tool_timeout_s, remaining)
            )
        state.transcript.append(
            {
                "kind": "tool",
                "step": state.steps,
                "tool_use_id": block.get("id"),
                "name": name,
                "input": tool_input,
                "result": outcome.text,
                "is_error": outcome.is_error,
                "duration_s": outcome.duration_s,
            }
        )
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": block.get("id"),
            "content": outcome.text,
        }
        if outcome.is_error:
            result["is_error"] = True
        return result

    @staticmethod
    def _submit(state: _RunState, tool_input: Any) -> ToolOutcome:
        if not isinstance(tool_input, dict):
            return ToolOutcome("Error: submit needs a JSON object with rationale and expected_effect.", True)
        rationale, effect = tool_input.get("rationale"), tool_input.get("expected_effect")
        if not isinstance(rationale, str) or not rationale.strip():
            return ToolOutcome("Error: submit needs a non-empty string 'rationale'.", True)
        state.submitted = (
            rationale.strip(),
            effect.strip() if isinstance(effect, str) and effect.strip() else None,
        )
        return ToolOutcome("Submitted. The harness will now test, train and score the change.")

    @staticmethod
    def _unsubmitted_rationale(state: _RunState, stop: str) -> str:
        said = [
            block["text"]
            for entry in state.transcript
            if entry.get("kind") == "response"
            for block in content_blocks(entry.get("content"))
            if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"].strip()
        ]
        last = said[-1].strip().replace("\n", " ")[:300] if said else "no explanation given"
        return f"stopped before submitting ({stop} limit or no submit): {last}"


class _RunState:
    def __init__(self, started: float, label: str, generation: int) -> None:
        self.started = started
        self.label = label
        self.generation = generation
        self.steps = 0
        self.usage = Usage()
        self.messages: list[dict[str, Any]] = []
        self.transcript: list[dict[str, Any]] = []
        self.submitted: tuple[str, str | None] | None = None

    def add_user(self, content: list[dict[str, Any]]) -> None:
        self.messages.append({"role": "user", "content": content})
        self.transcript.append({"kind": "user", "step": self.steps, "content": content})

    def details(self, **extra: Any) -> dict[str, Any]:
        return {"label": self.label, "generation": self.generation, "step": self.steps, **extra}


def plain_text(value: Any) -> Any:
    """`value` with every string made encodable: JSON may carry lone surrogates ("\\udcff"), which no
    file, shell or record can hold; they become their escape sequence, visible to the model."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", errors="backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {plain_text(key): plain_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_text(item) for item in value]
    return value


def content_blocks(content: Any) -> list[dict[str, Any]]:
    """The blocks of a reply's content that are blocks at all.

    The API always sends a list of objects; a recorded reply (replayed from an edited trajectory)
    may hold anything, and what is not an object can be no tool call to answer.
    """
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict)]


def system_blocks() -> list[dict[str, Any]]:
    return [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": EPHEMERAL}]


def request_for(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The request of one step: a moving cache breakpoint on the newest user block caches the conversation."""
    sent = copy.deepcopy(messages)
    last = sent[-1]["content"][-1] if sent and sent[-1]["role"] == "user" and sent[-1]["content"] else None
    if last is not None:
        last["cache_control"] = EPHEMERAL
    return {"system": system_blocks(), "tools": TOOLS, "messages": sent}


# ---------------------------------------------------------------------------------------------
# The live model


class AnthropicModel:
    """Calls the Messages API. Faults are retried by the SDK itself (`max_retries`: exponential
    backoff with jitter, `retry-after` honoured); when it gives up, so does this, clearly."""

    def __init__(
        self,
        config: ClaudeConfig,
        api_key: str,
        on_retry: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.client = anthropic.Anthropic(
            api_key=api_key,
            base_url=config.base_url,
            max_retries=config.sdk_max_retries,
            timeout=config.request_timeout_s,
        )
        self.on_retry = on_retry or (lambda note: None)

    @property
    def endpoint(self) -> str:
        return str(self.client.base_url)

    def __call__(self, request: dict[str, Any], step: int) -> dict[str, Any]:
        # This SDK's create() has no temperature parameter; the API still accepts it in the body.
        temperature = self.config.temperature
        extra_body = {"temperature": temperature} if temperature is not None else None
        try:
            raw = self.client.messages.with_raw_response.create(
                model=self.config.model,
                max_tokens=self.config.max_tokens,
                system=request["system"],
                tools=request["tools"],
                messages=request["messages"],
                extra_body=extra_body,
            )
        except anthropic.APIStatusError as exc:
            if exc.status_code not in RETRYABLE_STATUS and exc.status_code < 500:
                raise self._refused(exc) from exc
            raise self._unavailable(exc) from exc
        except anthropic.APIConnectionError as exc:  # includes timeouts and dropped connections
            raise self._unavailable(exc) from exc
        if raw.retries_taken:
            self.on_retry({"step": step, "retries": raw.retries_taken})
        # A malformed reply (say, a tool input that is not an object) is kept as sent, quietly.
        return raw.parse().model_dump(mode="json", exclude_none=True, warnings=False)

    def _unavailable(self, exc: Exception) -> ModelUnavailable:
        return ModelUnavailable(
            f"the model API at {self.endpoint} kept failing ({_describe(exc)}) after "
            f"{self.config.sdk_max_retries + 1} attempts. The run is paused with every finished step "
            "recorded; check the service status and your network, then continue with "
            "`rsi resume RUN_DIR`."
        )

    def _refused(self, exc: anthropic.APIStatusError) -> ConfigError:
        if exc.status_code in (401, 403):
            return ConfigError(
                f"the model API at {self.endpoint} refused the key ({exc.status_code}). Check "
                "ANTHROPIC_API_KEY (and the base URL), or run with --proposer offline."
            )
        return ConfigError(
            f"the model API at {self.endpoint} rejected the request for model {self.config.model!r} "
            f"({exc.status_code}: {_describe(exc)}). Check the model id and max_tokens in the run config."
        )


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no error"
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {str(exc)[:200]}"


class ClaudeProposer:
    """The tool-using Claude agent; the API key comes from the host environment only."""

    name = "claude"
    config_class = ClaudeConfig

    @classmethod
    def from_config(
        cls, config: ClaudeConfig, backend: Backend, progress: ProgressCallback | None = None
    ) -> ClaudeProposer:
        return cls(config, backend=backend, progress=progress)

    def __init__(
        self,
        config: ClaudeConfig,
        backend: Backend,
        progress: ProgressCallback | None = None,
    ) -> None:
        api_key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
        if not api_key:
            raise ConfigError(
                "the claude proposer needs an API key: set ANTHROPIC_API_KEY in this shell's environment "
                "(it is never written to the run directory), or run with --proposer offline."
            )
        self.config = config
        self.backend = backend
        self.progress: ProgressCallback = progress or _no_progress
        self._retries: list[dict[str, Any]] = []
        self.model = AnthropicModel(config, api_key, on_retry=self._note_retry)

    def _note_retry(self, note: dict[str, Any]) -> None:
        self._retries.append(note)
        log.warning("model API call at step %s succeeded after %s retries", note["step"], note["retries"])
        self.progress("agent", {"summary": f"model API call succeeded after {note['retries']} retries"})

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        self._retries = []
        run = AgentRun(self.config, self.backend, self.model, self.name, progress=self.progress)
        proposal = run.propose(context, parent_tree)
        if self._retries:
            proposal.transcript.insert(-1, {"kind": "api_retries", "retries": list(self._retries)})
        return proposal
