"""The one small exception tree of pktlstm; every user-facing error is a PktlstmError."""

from __future__ import annotations


class PktlstmError(Exception):
    """Base class: the CLI prints its message on one line and exits non-zero."""


class CaptureError(PktlstmError):
    """A capture file or interface cannot be opened or is not a capture at all."""


class ConfigError(PktlstmError, ValueError):
    """A configuration value is out of range; the message names field, value and what is allowed."""


class LabelError(PktlstmError):
    """A label source is unreadable; the message names the file and line."""


class ArtifactError(PktlstmError):
    """A model artifact or dataset folder is missing, corrupt or of another format version."""


class LabError(PktlstmError):
    """The lab cannot run here (not root, tools or namespaces missing) or a lab step failed."""
