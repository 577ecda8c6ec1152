"""The stack's own flow: keeps the server's database bounded and says when runs are stuck or late."""
