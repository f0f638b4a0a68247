"""Logging is configured once by the top-level CLI: to stderr, at the level -v / --log-level ask."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT
from tests.rsi.test_interrupt import RSI


def rsi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RSI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_verbosity_flags_set_the_level_of_library_logs_on_stderr() -> None:
    quiet, debug, chosen = rsi("doctor"), rsi("-vv", "doctor"), rsi("--log-level", "debug", "doctor")
    assert quiet.returncode == debug.returncode == chosen.returncode == 0
    assert " DEBUG " not in quiet.stderr
    for result in (debug, chosen):  # the Docker SDK's HTTP requests, through the configured handler
        assert " DEBUG urllib3" in result.stderr or " DEBUG docker" in result.stderr, result.stderr
        assert " DEBUG " not in result.stdout


def test_an_unknown_level_is_a_usage_error() -> None:
    result = rsi("--log-level", "loud", "doctor")
    assert result.returncode == 2 and "not a log level" in result.stderr
