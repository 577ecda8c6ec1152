"""How the stack deploys the "Users report" flow (stack/catalog.py reads these names; a
name left out takes the stack's default). Concurrent runs are allowed: they already share
the users API's budget (pacing.py)."""

from flows.users_report.settings import PIPELINE_VARIABLES, load_settings

# The pipeline's settings, handed from the agent's environment to this flow's containers.
ENV = PIPELINE_VARIABLES


def check_settings() -> None:
    """Raises SettingsError naming a bad pipeline setting: the agent refuses to start on one
    rather than fail every run."""
    load_settings()
