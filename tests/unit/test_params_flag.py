"""``params.flag``: a boolean query option as kube-apiserver's ``Convert_Slice_string_To_bool`` reads it."""

from __future__ import annotations

import pytest

from atoll.apiserver.registry.params import flag


@pytest.mark.parametrize("raw", ["true", "True", "TRUE", "1", "t", "T", "yes", ""])
def test_true_is_anything_but_zero_or_false(raw: str) -> None:
    assert flag(raw) is True


@pytest.mark.parametrize("raw", ["false", "False", "FALSE", "fAlSe", "0"])
def test_false_is_zero_or_false_in_any_case(raw: str) -> None:
    assert flag(raw) is False


def test_absent_is_none_and_an_in_process_bool_is_itself() -> None:
    assert flag(None) is None and flag(True) is True and flag(False) is False
