"""The Makefile's commands (stack.py) and the .env they read (dotenv.py)."""
