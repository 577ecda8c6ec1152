"""The stack's deployment code: its settings, the flow packages it deploys (catalog) and
what register.py and the agent ask of Prefect Server. Nothing here is part of a flow's
version."""
