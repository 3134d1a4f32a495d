"""Errors of the remediation layer."""


class CommandError(Exception):
    """Root of every error `commands` raises on purpose; the message is fit for a user."""
