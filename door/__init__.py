"""The door: every GraphQL request to the API, read and checked against the caller's role
before it reaches apollo (docs/security.md)."""
