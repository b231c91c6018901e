"""The one error hierarchy of the project.

Every user-facing error is a `PlannerError`; a command's `main()` prints its message as one
line and exits 1. Each subclass also inherits the builtin it resembles, so callers that catch
`ValueError` or `RuntimeError` keep working.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Root of every error a user can cause and fix. The message is one full sentence."""


class ConfigError(PlannerError, ValueError):
    """A spec, an option or an override is wrong."""


class DataError(PlannerError, ValueError):
    """A corpus, a results table or a laws file is missing, empty or malformed."""


class ModelError(PlannerError, ValueError):
    """A base model path or id does not name a loadable model."""


class LedgerError(PlannerError, RuntimeError):
    """The ledger storage is unreachable or holds something unexpected."""


class FitError(PlannerError, ValueError):
    """A scaling law cannot be fitted to the given points."""


class AllocationError(PlannerError, ValueError):
    """A budget cannot be split under the given caps, floors or laws."""
