"""Code every flow package may import. It is part of the version of each flow that imports
it (stack/catalog.py), so a change here gives those flows, and only those, a new version."""
