"""CLI commands of the report feature (registered on the shared typer app)."""

from .app import app  # noqa: F401
