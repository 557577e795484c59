"""skinvault: share skin photos without leaking more than the clinical question needs."""

__version__ = "0.1.0"
