"""Reading settings from the environment: a bad value stops the program with one line
naming the variable, the value and what is allowed."""

import os


class SettingsError(ValueError):
    """A setting in the environment has a value that is not allowed."""


def text(name, default):
    return os.environ.get(name, "").strip() or default


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
            f"{'a whole number' if kind is int else 'a number'} from {low:g} to {high:g}"
        )
    return value


def choice(name, default, allowed):
    value = text(name, default).lower()
    if value not in allowed:
        raise SettingsError(f"{name}={os.environ[name]!r} is not allowed: use {' or '.join(allowed)}")
    return value
