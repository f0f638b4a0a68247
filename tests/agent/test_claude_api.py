"""The Claude agent against a scripted Messages API on loopback, through the real SDK.

These scripts never call a sandbox tool (or only with inputs rejected before a sandbox is needed),
so no container is opened: the agent's exploration session is lazy. The backend is therefore None.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from agent.claude import ClaudeProposer
from agent.config import ClaudeConfig
from agent.pricing import CONSERVATIVE, PRICES, price_for
from core.contracts import HistoryEntry, ProposalContext
from core.errors import ConfigError, ModelUnavailable
from tests.agent.fake_api import (
    FakeMessagesAPI,
    Fault,
    dropped,
    fault,
    reply,
    submit_reply,
    text,
    tool_reply,
    tool_use,
)
from tests.conftest import TARGET

KEY = "sk-ant-test-0000-never-written-anywhere"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


def context(generation: int = 1, history: list[HistoryEntry] | None = None) -> ProposalContext:
    return ProposalContext(
        generation=generation,
        objective="imitate the teacher",
        metric_name="r2",
        direction="higher",
        parent_commit="0123456789abcdef",
        parent_metric_mean=0.15,
        parent_metric_std=0.01,
        history=history or [],
    )


def propose(api: FakeMessagesAPI, **settings: object):  # type: ignore[no-untyped-def]
    config = ClaudeConfig(base_url=api.url, **settings)  # type: ignore[arg-type]
    return ClaudeProposer(config, backend=None).propose(context(), TARGET)  # type: ignore[arg-type]


def test_submit_records_claims_usage_cache_and_prompt() -> None:
    history = [
        HistoryEntry(
            generation=1,
            parent_commit="0123456789abcdef",
            rationale="raise the learning rate",
            metric_mean=0.1,
            decision="reject",
            reason="[metric-improves] no better than the parent",
        )
    ]
    script = [
        tool_reply(tool_use("nope", {}), input_tokens=3000, cache_write=2000),
        submit_reply("widen the inputs", "r2 up to about 0.6", input_tokens=50, cache_read=5000),
    ]
    with FakeMessagesAPI(script) as api:
        proposal = ClaudeProposer(ClaudeConfig(base_url=api.url), backend=None).propose(  # type: ignore[arg-type]
            context(2, history), TARGET
        )
    assert proposal.stop_reason == "submitted" and proposal.diff == ""
    assert proposal.rationale == "widen the inputs" and proposal.claimed_effect == "r2 up to about 0.6"
    assert proposal.usage.model_calls == 2 and proposal.usage.cache_read_tokens == 5000
    assert proposal.usage.cache_write_tokens == 2000
    expected = price_for("claude-sonnet-5-5").cost(3050, 40, 5000, 2000)
    assert proposal.usage.dollars == pytest.approx(expected)
    summary = proposal.transcript[-1]
    assert summary["kind"] == "summary" and summary["cache_hit_rate"] == pytest.approx(5000 / 10050, abs=1e-4)
    first, second = api.requests
    # Tools: Anthropic's client-side bash and text editor, plus submit; the stable prefix is cached.
    assert [t.get("type", "custom") for t in first["tools"]] == [
        "bash_20250124",
        "text_editor_20250728",
        "custom",
    ]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    prompt = first["messages"][0]["content"][0]
    assert prompt["cache_control"] == {"type": "ephemeral"}
    for expected_text in (
        "imitate the teacher",
        "0.1500 ± 0.0100",
        "gen 1 [reject]",
        "metric-improves",
        "predict.py",
    ):
        assert expected_text in prompt["text"]
    assert second["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert second["messages"][-1]["content"][0]["is_error"] is True
    # The transcript holds the exact inputs and outputs, never the key.
    kinds = [entry["kind"] for entry in proposal.transcript]
    assert kinds == ["setup", "user", "response", "tool", "user", "response", "tool", "summary"]
    assert KEY not in proposal.model_dump_json()
    assert api.headers[0]["authorization"].endswith(KEY) or api.headers[0].get("x-api-key") == KEY


@pytest.mark.parametrize(
    "first_fault",
    [fault(429, **{"retry-after": "0.01"}), fault(529), fault(500), dropped()],
    ids=["rate-limited-429", "overloaded-529", "server-error-500", "connection-dropped"],
)
def test_api_faults_are_retried(first_fault: Fault) -> None:
    with FakeMessagesAPI([first_fault, submit_reply()]) as api:
        proposal = propose(api)
    assert proposal.stop_reason == "submitted"
    assert [h["x-stainless-retry-count"] for h in api.headers] == ["0", "1"]
    retries = next(e for e in proposal.transcript if e["kind"] == "api_retries")["retries"]
    assert retries == [{"step": 1, "retries": 1}]


def test_retry_after_is_honoured() -> None:
    waited: list[float] = []
    with FakeMessagesAPI([fault(429, **{"retry-after": "1.5"}), submit_reply()]) as api:
        started = time.monotonic()
        propose(api, sdk_max_retries=1)
        waited.append(time.monotonic() - started)
    assert waited[0] >= 1.4  # never sooner than the server asked (a sleep is never shorter)


def test_timeouts_are_retried() -> None:
    slow = Fault(delay_s=1.5, then=submit_reply())
    with FakeMessagesAPI([slow, submit_reply()]) as api:
        proposal = propose(api, request_timeout_s=0.4)
    assert proposal.stop_reason == "submitted" and len(api.requests) == 2


def test_one_retry_layer_outlasts_several_faults_and_is_recorded(caplog: pytest.LogCaptureFixture) -> None:
    faults = [fault(529), fault(503), fault(529), submit_reply()]
    with caplog.at_level(logging.WARNING, logger="agent.claude"), FakeMessagesAPI(faults) as api:
        proposal = propose(api, sdk_max_retries=3)
    assert proposal.stop_reason == "submitted"
    assert [h["x-stainless-retry-count"] for h in api.headers] == ["0", "1", "2", "3"]
    retries = next(e for e in proposal.transcript if e["kind"] == "api_retries")["retries"]
    assert retries == [{"step": 1, "retries": 3}]
    assert "after 3 retries" in caplog.text


@pytest.mark.parametrize("max_retries", [0, 2])
def test_persistent_outage_raises_model_unavailable(max_retries: int) -> None:
    with FakeMessagesAPI([fault(529)] * 6) as api, pytest.raises(ModelUnavailable) as caught:
        propose(api, sdk_max_retries=max_retries)
    assert len(api.requests) == max_retries + 1  # the SDK's attempts, and no second layer on top
    assert "rsi resume" in str(caught.value) and api.url in str(caught.value)


def test_refused_key_is_a_clear_error_without_the_key() -> None:
    with FakeMessagesAPI([fault(401)]) as api, pytest.raises(ConfigError) as caught:
        propose(api)
    assert "ANTHROPIC_API_KEY" in str(caught.value) and KEY not in str(caught.value)
    assert len(api.requests) == 1  # an authentication error is not retried


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        ClaudeProposer(ClaudeConfig(), backend=None)  # type: ignore[arg-type]


def test_malformed_tool_calls_get_error_results() -> None:
    script = [
        reply(
            tool_use("bash", {"cmd": 5}),
            tool_use("str_replace_based_edit_tool", "{not json"),
            tool_use("launch_rockets", {"now": True}),
            tool_use("submit", {"expected_effect": "no rationale given"}),
        ),
        submit_reply(),
    ]
    with FakeMessagesAPI(script) as api:
        proposal = propose(api)
    assert proposal.stop_reason == "submitted"
    results = api.requests[1]["messages"][-1]["content"]
    assert [r["is_error"] for r in results] == [True] * 4
    assert "'command' must be a string" in results[0]["content"]
    assert "must be a JSON object" in results[1]["content"]
    assert "unknown tool 'launch_rockets'" in results[2]["content"]
    assert "rationale" in results[3]["content"]


@pytest.mark.parametrize(
    ("settings", "script", "expected"),
    [
        ({"max_generation_tokens": 10_000}, [reply(text("thinking"), input_tokens=20_000)], "tokens"),
        ({"max_generation_dollars": 0.05}, [reply(text("thinking"), output_tokens=10_000)], "dollars"),
        ({"max_generation_seconds": 0.5}, [Fault(delay_s=0.8, then=reply(text("slow")))], "time"),
        ({"max_steps": 2}, [tool_reply(tool_use("nope", {})), tool_reply(tool_use("nope", {}))], "steps"),
        ({}, [reply(text("I am done.")), reply(text("Really done."))], "no_submit"),
    ],
    ids=["tokens", "dollars", "time", "steps", "no-submit"],
)
def test_limits_end_the_generation_cleanly(settings: dict, script: list, expected: str) -> None:  # type: ignore[type-arg]
    with FakeMessagesAPI(script) as api:
        proposal = propose(api, **settings)
    assert proposal.stop_reason == expected and proposal.diff == ""
    assert proposal.rationale.startswith("stopped before submitting")
    assert proposal.transcript[-1]["stop_reason"] == expected


def test_progress_reports_each_model_call_and_tool() -> None:
    seen: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    with FakeMessagesAPI([tool_reply(tool_use("nope", {})), submit_reply("better init")]) as api:
        proposer = ClaudeProposer(ClaudeConfig(base_url=api.url), backend=None)  # type: ignore[arg-type]
        proposer.progress = lambda phase, details: seen.append((phase, details))
        proposer.propose(context(), TARGET)
    tools = [d["tool"] for phase, d in seen if phase == "agent" and "tool" in d]
    assert tools == ["nope", "submit"]
    assert any("better init" in d.get("summary", "") for _, d in seen)
    assert all(d["label"] == "explore-gen-0001" for _, d in seen)


def test_prices_known_dated_and_unknown(caplog: pytest.LogCaptureFixture) -> None:
    assert price_for("claude-haiku-4-5-20251001") is PRICES["claude-haiku-4-5"]
    sonnet = price_for("claude-sonnet-5-5")
    assert sonnet.cost(input_tokens=1_000_000, output_tokens=1_000_000) == pytest.approx(12.0)
    haiku = price_for("claude-haiku-5-5")
    assert haiku.cost(input_tokens=150_000) == pytest.approx(0.075)  # the long-prompt band
    with caplog.at_level(logging.WARNING):
        assert price_for("claude-unheard-of-9") is CONSERVATIVE
    assert "no price known for model 'claude-unheard-of-9'" in caplog.text


def test_history_is_compact(tmp_path: Path) -> None:
    from agent.prompts import HISTORY_LIMIT, context_message

    history = [
        HistoryEntry(generation=g, parent_commit="p", rationale=f"idea {g}", decision="reject", reason="x")
        for g in range(1, HISTORY_LIMIT + 6)
    ]
    message = context_message(context(HISTORY_LIMIT + 6, history), tmp_path)
    assert "(5 earlier generations not shown)" in message and "idea 6" in message and "idea 5 " not in message


def test_model_max_tokens_and_temperature_are_configurable() -> None:
    with FakeMessagesAPI([submit_reply()]) as api:
        propose(api, model="claude-opus-5-5", max_tokens=1234, temperature=0.3)
    sent = api.requests[0]
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("claude-opus-5-5", 1234, 0.3)


def test_lone_surrogates_in_a_reply_are_made_plain_text() -> None:
    # JSON may escape a lone surrogate ("\udcff"); no file, shell or trajectory line can hold one.
    script = [
        reply(text("thinking \udcff"), tool_use("bash\ud800", {"\udcff": "x"})),
        submit_reply("done \udcff"),
    ]
    with FakeMessagesAPI(script) as api:
        proposal = propose(api)
    assert proposal.stop_reason == "submitted" and proposal.rationale == "done \\udcff"
    results = api.requests[1]["messages"][-1]["content"]
    assert results[0]["is_error"] and "unknown tool 'bash\\\\ud800'" in results[0]["content"]
    proposal.model_dump_json()  # recordable


def test_a_link_out_of_the_workspace_is_left_out_of_the_proposal(tmp_path: Path) -> None:
    import io
    import tarfile

    from agent.tools import diff_trees

    (tmp_path / "a.py").write_text("x = 1\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"x = 2\n"
        info = tarfile.TarInfo("./a.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("./leak")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    diff = diff_trees(tmp_path, buffer.getvalue())
    assert "+x = 2" in diff and "leak" not in diff
