"""How the stack deploys "Server housekeeping" (stack/catalog.py reads these names)."""

from flows.server_housekeeping import settings
from flows.shared.settings import names_read

# Its settings, each declared once by its reader in settings.py, handed from the agent's
# environment to its containers.
ENV = names_read(settings)

# One run at a time: two would delete and count the same runs.
MAX_RUNNING = 1


def check_settings() -> None:
    """Raises SettingsError naming a bad setting: the agent refuses to start on one."""
    settings.load_settings()
