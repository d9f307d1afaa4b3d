"""One clear message for every kind of bad input: file, line, key path, value, what is allowed.

The cases live in error_cases.py; the README's error table is generated from them.
"""

from __future__ import annotations

import pytest
from error_cases import CASES, message, readme_table, table


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input_gets_one_clear_message(tmp_path, case):
    code, text = message(case, tmp_path)
    assert code == 2, text
    assert "Traceback" not in text
    if case.key:
        assert f"'{case.key}'" in text, text
    if case.line:
        assert case.line in text, text
    for words in case.words:
        assert words in text, text


def test_readme_error_table_is_current():
    assert readme_table() == table(), (
        "the README's error table is stale: run `python tests/error_cases.py`"
    )
