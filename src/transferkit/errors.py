"""Exceptions raised by transferkit.

Every error says what was wrong, what was expected and what to do. Each subclasses
``TransferKitError`` and the matching built-in, so ``except ValueError`` still works.
"""

from __future__ import annotations


class TransferKitError(Exception):
    """Base class of every error transferkit raises on purpose."""


class WeightsNotFoundError(TransferKitError, FileNotFoundError):
    """No pretrained weights could be found for a backbone (and downloading was off or failed)."""


class UnknownBackboneError(TransferKitError, KeyError):
    """A backbone name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class DataError(TransferKitError, ValueError):
    """The data set cannot be used as given (layout, classes, splits, files)."""


class NotFittedError(TransferKitError, AttributeError):
    """A component was used before ``fit`` was called."""


class ModelFolderError(TransferKitError, ValueError):
    """A saved model folder is missing files or has an unreadable config."""


class ConfigError(TransferKitError, ValueError):
    """An option whose value cannot work with the chosen backbone or data (checked where both are known)."""


class TrainingError(TransferKitError, RuntimeError):
    """Training that cannot make progress (e.g. no finite gradient in a whole epoch); the message says what to try."""


class FinishedRunError(DataError):
    """``--resume`` was given a run folder whose run has already finished: there is nothing to continue."""

    def __init__(self, run_dir, command: str, *, report_expected: bool = True):
        """``report_expected``: the run was to write a report (its config.json says so)."""
        from pathlib import Path

        where = (f"{run_dir}/metrics.json and report.html" if (Path(run_dir) / "report.html").is_file()
                 else f"{run_dir}/metrics.json (its report was not written: the run was stopped while writing it; "
                      f"`transferkit report {run_dir}` writes it)" if report_expected else f"{run_dir}/metrics.json")
        super().__init__(
            f"'{run_dir}' has finished already (config.json says status 'done'): there is nothing to resume. Its results are in "
            f"{where}; `transferkit evaluate{'-text' if command == 'fit-text' else ''} {run_dir} DATA` "
            f"scores it on other data. To train again, run `transferkit {command}` with a new --out folder.")
