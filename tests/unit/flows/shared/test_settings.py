import types

import pytest

from flows.shared import settings


def test_text_takes_the_default_for_missing_or_blank(monkeypatch):
    monkeypatch.delenv("X_TEXT", raising=False)
    assert settings.text("X_TEXT", "d") == "d"
    monkeypatch.setenv("X_TEXT", "  ")
    assert settings.text("X_TEXT", "d") == "d"
    monkeypatch.setenv("X_TEXT", " v ")
    assert settings.text("X_TEXT", "d") == "v"


@pytest.mark.parametrize(
    "raw, kind, line",
    [
        ("abc", int, "X_NUMBER='abc' is not allowed: use a whole number from 1 to 10"),
        ("1.5", int, "X_NUMBER='1.5' is not allowed: use a whole number from 1 to 10"),
        ("11", float, "X_NUMBER='11' is not allowed: use a number from 1 to 10"),
    ],
)
def test_a_number_out_of_range_or_of_the_wrong_kind_is_one_line(monkeypatch, raw, kind, line):
    monkeypatch.setenv("X_NUMBER", raw)
    with pytest.raises(settings.SettingsError) as error:
        settings.number("X_NUMBER", 5, kind, 1, 10)
    assert str(error.value) == line


def test_numbers_and_choices_read_their_values(monkeypatch):
    monkeypatch.setenv("X_NUMBER", " 7 ")
    assert settings.number("X_NUMBER", 5, int, 1, 10) == 7
    monkeypatch.setenv("X_CHOICE", "ALL")
    assert settings.choice("X_CHOICE", "failed", ("failed", "all")) == "all"
    monkeypatch.setenv("X_CHOICE", "some")
    with pytest.raises(settings.SettingsError, match="X_CHOICE='some' is not allowed: use failed or all"):
        settings.choice("X_CHOICE", "failed", ("failed", "all"))


def test_names_read_are_the_readers_first_arguments_in_order(tmp_path):
    source = tmp_path / "some_settings.py"
    source.write_text(
        "from flows.shared.settings import number, text\n"
        "def load():\n"
        "    return (text('B_NAME', ''), number('A_NAME', 1, int, 0, 9),\n"
        "            text('B_NAME', ''), other('C_NAME'), text(NAME_IN_A_VARIABLE, ''))\n"
    )
    assert settings.names_read(types.SimpleNamespace(__file__=str(source))) == ("B_NAME", "A_NAME")


def test_bounds_are_written_as_people_write_them(monkeypatch):
    monkeypatch.setenv("X_NUMBER", "-1")
    with pytest.raises(settings.SettingsError, match=r"use a number from 0\.01 to 10,000,000$"):
        settings.number("X_NUMBER", 5, float, 0.01, 10_000_000)
    assert settings.as_written(36_500) == "36,500" and settings.as_written(2.5) == "2.5"
