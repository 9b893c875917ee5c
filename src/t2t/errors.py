"""Typed exceptions: the API raises these, the CLI turns each into one line and exit status 2."""

from __future__ import annotations


class T2TError(Exception):
    """Base class for every error that is the user's to fix (bad input, bad config, missing file)."""


class ConfigError(T2TError, ValueError):
    """A configuration that cannot be built: names the field and the allowed values."""


class CheckpointError(T2TError):
    """A checkpoint that is missing, unreadable, or of another architecture."""


class DataError(T2TError):
    """Input data that cannot be read: names the file and the line."""
