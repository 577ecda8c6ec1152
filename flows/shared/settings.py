"""Reading settings from the environment: a bad value stops the program with one line
naming the variable, the value and what is allowed."""

import ast
import os
from pathlib import Path
from typing import Tuple
from urllib.parse import urlsplit

# The most days anything is kept for (a hundred years): "keep" needs no special value.
MAX_KEEP_DAYS = 36_500
# The readers below: a settings module declares a setting by reading it with one of them.
READERS = ("text", "number", "choice", "url")


class SettingsError(ValueError):
    """A setting in the environment has a value that is not allowed."""


def text(name, default):
    return os.environ.get(name, "").strip() or default


def as_written(value) -> str:
    """A number as people write it: 1,000,000 and 0.01, never 1e+06."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def number(name, default, kind, low, high):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(
            f"{name}={raw!r} is not allowed: use "
            f"{'a whole number' if kind is int else 'a number'} from {as_written(low)} to {as_written(high)}"
        )
    return value


def choice(name, default, allowed):
    value = text(name, default).lower()
    if value not in allowed:
        raise SettingsError(f"{name}={os.environ[name]!r} is not allowed: use {' or '.join(allowed)}")
    return value


def url(name, default):
    """An http:// or https:// address with a host; empty: the default."""
    value = text(name, default)
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise SettingsError(f"{name}={value!r} is not allowed: use an http:// or https:// address")
    return value


def names_read(module) -> Tuple[str, ...]:
    """The settings a module reads with the readers above, in the order it reads them: the
    one declaration a flow's settings have (its deployment.py hands them to its runs, and
    docs/settings.md is checked against them)."""
    return names_in_file(Path(module.__file__))


def names_in_file(path: Path) -> Tuple[str, ...]:
    """The settings a Python file reads with the readers above, in the order it reads them."""
    calls = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) in READERS
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return tuple(dict.fromkeys(node.args[0].value for node in calls))
