"""How the stack deploys "Server housekeeping" (stack/catalog.py reads these names)."""

from flows.server_housekeeping.settings import VARIABLES, load_settings

# Its settings, handed from the agent's environment to its containers.
ENV = VARIABLES

# One run at a time: two would delete and count the same runs.
MAX_RUNNING = 1


def check_settings() -> None:
    """Raises SettingsError naming a bad setting: the agent refuses to start on one."""
    load_settings()
