"""How the stack deploys the "Users report" flow (stack/catalog.py reads these names; a
name left out takes the stack's default). Concurrent runs are allowed: they already share
the users API's budget (pacing.py)."""

from flows.shared.settings import names_read
from flows.users_report import settings

# The pipeline's settings, each declared once by its reader in settings.py, handed from
# the agent's environment to this flow's containers.
ENV = names_read(settings)


def check_settings() -> None:
    """Raises SettingsError naming a bad pipeline setting: the agent refuses to start on one
    rather than fail every run."""
    settings.load_settings()
