"""The exception family that carries control flow and user-facing messages.

Every message says what happened, with which input, and what to do next: the CLI prints it as it
is, without a traceback.
"""

from __future__ import annotations


class RsiError(Exception):
    """Base of every error the tool raises on purpose; its message is shown to the user."""


class ConfigError(RsiError):
    """A configuration file (rsi.toml, run config, policy) is missing or invalid."""


class PatchError(RsiError):
    """A diff cannot be applied safely: it is malformed, escapes the tree, or does not apply."""


class SandboxError(RsiError):
    """The isolation backend failed (engine down, image missing) — not the candidate's fault."""


class TrajectoryError(RsiError):
    """A trajectory is unreadable, of an unknown schema, or its hash chain is broken."""


class RunInterrupted(RsiError):
    """The run was asked to stop: the stop file (after the current generation) or a signal (the step in
    flight is abandoned and re-run by `rsi resume`)."""


class LimitsExceeded(RsiError):
    """A proposer or the run hit one of its budgets (steps, tokens, dollars, wall time)."""


class ModelUnavailable(RsiError):
    """The model API kept failing (rate limits, overload, outage) after every retry: pause the run."""
