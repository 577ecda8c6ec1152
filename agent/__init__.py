"""The Docker agent's start-up: `python -m agent.start`."""
