"""CLI commands of the export feature (registered on the shared typer app)."""

from .app import app  # noqa: F401
