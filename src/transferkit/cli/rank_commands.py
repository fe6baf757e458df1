"""CLI commands of the rank feature (registered on the shared typer app)."""

from .app import app  # noqa: F401
