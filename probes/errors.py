"""Errors of the probe layer."""


class ProbeConfigError(Exception):
    """A probe's own settings are unusable; the message names the setting and the fix."""
