"""What a reviewer reads is what runs: the `hidden_text` rule, and every printed or drawn candidate
text with its hidden characters shown as code points.

The characters are drawn from the Unicode table by category (every kind that renders as something
else or as nothing), not from a list of known tricks; each goes into every place a patch can put it.
"""

from __future__ import annotations

import base64
import io
import random
import sys
import unicodedata
from functools import cache

import pytest
from rich.table import Table
from rich.text import Text

from core.change_summary import describe_change
from core.contracts import Proposal
from core.visible import HIDDEN_CATEGORIES, hidden_characters, is_hidden, showing_console, visible
from policies.engine import CheckContext, load_policy, resolve_policy_path
from review.widgets.diffview import parse_rows
from sandbox.patch import parse_diff
from tests.conftest import file_diff


@cache
def by_category() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        category = unicodedata.category(char)
        hidden = category in HIDDEN_CATEGORIES - {"Cs"} or (category == "Zs" and char != " ")
        if hidden and char not in "\n\t":
            table.setdefault(category, []).append(char)
    return table


def hidden_sample(per_category: int = 4, seed: int = 7) -> list[str]:
    """Some characters of every hidden category, and the well-known ones among them."""
    rng = random.Random(seed)
    known = [
        "\u202e",
        "\u2066",
        "\u2069",
        "\u200b",
        "\u200d",
        "\ufeff",
        "\u00ad",
        "\x1b",
        "\r",
        "\x0c",
        "\x85",
    ]
    drawn = [c for chars in by_category().values() for c in rng.sample(chars, min(per_category, len(chars)))]
    return list(dict.fromkeys(known + drawn))


PLACES = {
    "in a string": lambda c: f"note = 'before{c}after'\n",
    "in a comment": lambda c: f"x = 1  # before{c}after\n",
    "between statements": lambda c: f"x = 1;{c}y = 2\n",
    "at the start": lambda c: f"{c}z = 3\n",
}


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_policy(resolve_policy_path("default"))


def judged(policy, diff: str, sources: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if sources is None:
        return policy.check(Proposal(diff=diff, rationale="", proposer="test"), None, None)
    return policy.judge(CheckContext(diff=diff, changes=parse_diff(diff), new_sources=sources))


def hidden_findings(verdict):  # type: ignore[no-untyped-def]
    return [f for f in verdict.findings if f.rule_id == "hidden-text"]


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_hidden_character_in_every_place_of_a_python_file_is_reported(policy, place: str) -> None:
    missed = []
    for char in hidden_sample():
        line = PLACES[place](char)
        found = hidden_findings(judged(policy, file_diff("train.py", "y = 0\n", "y = 0\n" + line)))
        if not found or found[0].line != 2 or found[0].verdict != "review":
            missed.append(f"U+{ord(char):04X}")
        elif f"U+{ord(char):04X}" not in found[0].message or hidden_characters(found[0].message):
            missed.append(f"U+{ord(char):04X} (message: {found[0].message!r})")
    assert not missed, f"{place}: {missed}"


@pytest.mark.parametrize("path", ["README.md", "data/rows.csv", "setup.cfg", "scripts/run.sh"])
def test_any_file_not_only_python_is_read(policy, path: str) -> None:
    for char in hidden_sample(per_category=1):
        found = hidden_findings(judged(policy, file_diff(path, "a\n", f"a\nb{char}c\n")))
        assert found and found[0].line == 2, (path, f"U+{ord(char):04X}")


def test_a_renamed_file_and_a_path_are_read(policy) -> None:  # type: ignore[no-untyped-def]
    text = "x = 1\nlabel = 'a\u2067b'\n"
    renamed = "diff --git a/notes.txt b/notes.py\nsimilarity index 100%\nrename from notes.txt\nrename to notes.py\n"
    found = hidden_findings(judged(policy, renamed, {"notes.py": text}))
    assert [f.line for f in found] == [2]
    lookalike = hidden_findings(judged(policy, file_diff("tr\u0430in.py", None, "x = 1\n")))
    assert lookalike and "U+0430" in lookalike[0].message and "\u0430" not in lookalike[0].message
    path = "mod\u202eyp.py"
    found = hidden_findings(judged(policy, file_diff(path, None, "x = 1\n")))
    assert found and "U+202E" in found[0].message and "\u202e" not in found[0].message


@pytest.mark.parametrize(
    ("name", "python_reads"),
    [
        ("sc\u043ere", "sc\u043ere"),  # Cyrillic o
        ("l\u03bfss", "l\u03bfss"),  # Greek omicron
        ("\uff45\uff56\uff41\uff4c", "eval"),  # fullwidth
        ("\U0001d41e\U0001d42f\U0001d41a\U0001d425", "eval"),  # mathematical bold
    ],
)
def test_a_name_spelled_outside_ascii_is_reported_and_code_rules_read_it_as_python_does(
    policy, name: str, python_reads: str
) -> None:
    after = f"y = 0\nvalue = {name}('1')\n"
    verdict = judged(policy, file_diff("train.py", "y = 0\n", after))
    found = hidden_findings(verdict)
    assert found and found[0].line == 2
    assert not any(not c.isascii() and c not in "⟨⟩" for c in found[0].message.split("Python reads")[0])
    if python_reads == "eval":  # the code rules see the name Python binds, not the one drawn
        assert any(f.rule_id == "forbidden-code" for f in verdict.findings)


@pytest.mark.parametrize(
    "line",
    [
        "x = 1  # naïve: 2× the old rate — about ½ of the gain, 10 µs\n",
        "greeting = '日本語のテキスト, ελληνικά, кириллица'\n",
        "e_acute = 'e\u0301'  # a combining accent is a letter's part, not a control\n",
        "emoji = '🙂'\n",
    ],
)
def test_honest_text_outside_ascii_is_no_finding(policy, line: str) -> None:
    assert not hidden_findings(judged(policy, file_diff("train.py", "y = 0\n", "y = 0\n" + line)))


def test_a_crlf_file_is_no_finding(policy) -> None:  # type: ignore[no-untyped-def]
    assert not hidden_findings(judged(policy, file_diff("notes.txt", "a\r\n", "a\r\nb\r\n")))


def test_every_printed_text_shows_hidden_characters_as_code_points() -> None:
    hostile = "name\x1b]52;c;ZWNobw==\x07\x1b[2J\r\u202eevil\u2028next\u200bend"
    out = io.StringIO()
    console = showing_console(file=out, width=200, color_system=None, highlight=False)
    console.print(hostile, markup=False)
    console.print(Text("error: ", style="red") + Text(hostile))
    table = Table()
    table.add_column("change")
    table.add_row(Text(hostile))
    console.print(table)
    printed = out.getvalue()
    assert not hidden_characters(printed), [f"U+{ord(c):04X}" for _, c in hidden_characters(printed)]
    # (Rich itself drops a carriage return and a bell: gone, not hidden.)
    for point in ("U+001B", "U+202E", "U+2028", "U+200B"):
        assert printed.count(point) >= 2, point


def test_the_change_line_and_the_diff_view_show_what_the_diff_holds() -> None:
    diff = file_diff("config.py", "lr = 0.01\n", "lr = 0.02\u202e # 10.0 = rl\n")
    assert "⟨U+202E⟩" in describe_change(diff, "raise\u202e the rate")
    assert not hidden_characters(describe_change(diff, "raise\x1b[8m the rate"))
    # A carriage return or a line separator stays in its line (git splits at line feeds only).
    rows = parse_rows(file_diff("train.py", "a = 1\n", "a = 1\nb = 2\rimport os\u2028c = 3\n"))
    added = [r for r in rows if r.kind == "add"]
    assert [r.text for r in added] == ["b = 2\rimport os\u2028c = 3"]
    assert all(r.kind != "meta" for r in rows)


def test_visible_keeps_plain_text_and_marks_each_hidden_character_once() -> None:
    assert visible("plain text\twith tab\n") == "plain text\twith tab\n"
    assert visible("a\u202eb") == "a⟨U+202E⟩b"
    assert all(is_hidden(c) for c in hidden_sample(per_category=2))


def utf7_payload(code: str) -> str:
    """`code` after a line feed, as UTF-7 writes it: plain ASCII that Python, told the file is
    UTF-7, decodes into new lines of code."""
    packed = base64.b64encode(("\n" + code).encode("utf-16-be")).decode("ascii").rstrip("=")
    return f"+{packed}"


@pytest.mark.parametrize(
    "declaration",
    [
        "# -*- coding: utf-7 -*-",
        "# vim: set fileencoding=utf-7 :",
        "#coding=UTF7",
        "# -*- coding: utf_7 -*-",
    ],
)
def test_a_coding_declaration_that_makes_python_run_other_text_is_read_as_python_reads_it(
    policy, declaration: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from sandbox.lineage import Lineage
    from sandbox.patched import patched_tree
    from tests.conftest import TARGET

    before = (TARGET / "config.py").read_text()
    payload = utf7_payload("    import subprocess\n    subprocess.run(['true'])\n   ")
    after = (
        declaration
        + "\n"
        + before.replace("input_range: float = 0.5", "input_range: float = 1.0", 1).replace(
            "# --- synthetic data ---", f"# --- synthetic data --- sweep {payload}-", 1
        )
    )
    assert after.isascii() and "subprocess" not in after
    diff = file_diff("config.py", before, after)
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    with patched_tree(lineage, lineage.head(), diff) as patched:
        verdict = policy.check(Proposal(diff=diff, rationale="", proposer="t"), None, None, patched=patched)
    rules = {f.rule_id for f in verdict.findings}
    assert verdict.verdict == "deny" and {"forbidden-code", "hidden-text"} <= rules, verdict.findings
    # The diff alone: the declaration itself goes to a human.
    assert hidden_findings(judged(policy, diff))


@pytest.mark.parametrize("codec", ["latin-1", "cp1252", "gbk", "shift_jis", "utf-7"])
def test_any_codec_but_utf8_is_reported_and_utf8_is_not(policy, codec: str) -> None:
    found = hidden_findings(judged(policy, file_diff("mod.py", None, f"# -*- coding: {codec} -*-\nx = 1\n")))
    assert found and found[0].line == 1
    for honest in ("# -*- coding: utf-8 -*-", "# coding: UTF-8", "# vim: set fileencoding=utf8 :"):
        assert not hidden_findings(judged(policy, file_diff("mod.py", None, f"{honest}\nx = 1\n")))


@pytest.mark.parametrize("text", ["++ b/scripts/tool.py", "++ /dev/null"])
def test_a_line_that_reads_as_a_file_header_is_reported_and_drawn_in_its_own_file(policy, text: str) -> None:
    before = '"""Doc."""\nx = 1\n'
    after = f'"""Doc.\n{text}\n"""\nx = 1\ny = 2\n'
    diff = file_diff("train.py", before, after)
    assert any("file header" in f.message for f in hidden_findings(judged(policy, diff)))
    assert {r.file for r in parse_rows(diff)} == {"train.py"}
    assert describe_change(diff, "").startswith("train.py")
    removed = file_diff("query.sql", "-- a comment\nselect 1;\n", "select 1;\n")
    assert any("removed line" in f.message for f in hidden_findings(judged(policy, removed)))
    assert [r.kind for r in parse_rows(removed)].count("del") == 1


def test_a_line_past_the_screen_is_reported_and_marked_where_it_is_cut(policy) -> None:  # type: ignore[no-untyped-def]
    from review.widgets.diffview import DiffView

    hidden = (
        "rate = learning_rate_at(config, step)"
        + " " * 400
        + "; _ = [optimizer.step(p, g, rate) for _ in range(3)]"
    )
    diff = file_diff("train.py", "x = 1\n", f"x = 1\n{hidden}\n")
    found = [f for f in hidden_findings(judged(policy, diff)) if "columns wide" in f.message]
    assert found and found[0].line == 2 and "optimizer.step" in found[0].message
    # Width as a terminal draws it: 99 tabs put a 199-character line's end past column 450 (red
    # team, round fifteen), and the diff view scrolls that far.
    tabbed = "step(p, g, rate)" + "\t" * 99 + ";[step(p, g, rate) for _ in 'abc']"
    assert len(tabbed) < 200
    tabbed_diff = file_diff("train.py", "x = 1\n", f"x = 1\n{tabbed}\n")
    found = [f for f in hidden_findings(judged(policy, tabbed_diff)) if "columns wide" in f.message]
    assert found and "for _ in" in found[0].message, found
    tab_row = next(r for r in parse_rows(tabbed_diff) if r.kind == "add" and r.text == tabbed)
    assert DiffView._row_cells(tab_row) > 400
    assert not [
        f
        for f in hidden_findings(judged(policy, file_diff("t.py", "x = 1\n", "x = 2  # " + "y" * 150 + "\n")))
    ]
    rows = parse_rows(diff)
    long_row = next(r for r in rows if r.kind == "add" and r.text == hidden)
    assert DiffView._row_cells(long_row) > 400
