"""cotlib's errors: one base class, so ``except CotlibError`` catches every failure cotlib reports on purpose.

Each message names what failed (the file and line, the record and field, the URL). Only :class:`TransientError`
(and the HTTP client's connection errors, 408/409/425/429 and 5xx) is retried: a bug in cotlib's own code is
never given a backoff.
"""

from __future__ import annotations


class CotlibError(Exception):
    """Base class of every error cotlib raises on purpose."""


class ConfigError(CotlibError, ValueError):
    """A backend setting or a config file is missing or malformed; the message names the variable or key."""


class QADataError(CotlibError, ValueError):
    """A question/answer file is malformed; the message names the file, the line and the field."""


class RecordError(CotlibError, ValueError):
    """A generation record is malformed; the message names the record and the field."""


class ExportError(RecordError):
    """A record cannot be exported; the message names the record and the field."""


class StoreError(CotlibError, RuntimeError):
    """The record store cannot be written or is in use by another run: the run stops, loudly."""


class TeacherError(CotlibError, RuntimeError):
    """A request to the teacher failed for good (after retries, or at once for errors that retrying cannot fix)."""


class AuthError(TeacherError):
    """401/403: no request of this run can succeed, so the whole run stops at once with this one message."""


class LocalTeacherError(TeacherError):
    """The offline local teacher (llama.cpp's server) could not be started or reached."""


class TransientError(CotlibError):
    """A failure that may pass: retried with backoff."""


class MalformedReply(TransientError, TeacherError):
    """A reply without choices, message or text: retried like a transient server error."""


class BudgetExceeded(CotlibError):
    """One question's call or token budget is spent; its search stops cleanly."""


class RunBudgetExceeded(CotlibError):
    """The run's call or token cap is reached: the run stops, and re-running continues it."""


class HubError(CotlibError, RuntimeError):
    """A Hugging Face Hub operation failed; the message says what to do."""


class ShardError(CotlibError, RuntimeError):
    """Sharded generation could not run (Ray missing or a worker failed)."""
