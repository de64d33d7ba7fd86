"""tokkit's click front end, installed as ``tokkit_cli`` (never as a bare ``cli`` module)."""
