"""The sandbox's interpreter hashes strings as a person's does: with a seed of its own per process.

A pinned PYTHONHASHSEED is something no run by hand has, so code that keyed its behaviour on a
string's hash could tell the harness from a person: a patch chose its data sampler by
`hash("uniform") % 1000`, constant under the pin, and scored R² 0.996 in the harness and 0.49 by
hand (red team, round fifteen). The sandbox sets no hash seed; two processes hash alike only by
chance (one in 2^64).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BOTH_BACKENDS, sandbox_backend


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_each_process_draws_its_own_hash_seed(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    (tmp_path / "ws").mkdir()
    with sandbox_backend(backend_name, request, f"test-hash-{backend_name}").open(
        tmp_path / "ws", None, "probe"
    ) as s:
        result = s.exec(
            'for i in 1 2 3; do python3 -c \'import os; print(hash("uniform"), os.environ.get("PYTHONHASHSEED"))\'; done',
            60,
        )
    lines = result.output.split()
    assert result.exit_code == 0, result.output
    hashes, seeds = lines[0::2], lines[1::2]
    assert len(set(hashes)) == 3, result.output
    assert set(seeds) == {"None"}, result.output
