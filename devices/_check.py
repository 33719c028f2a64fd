"""Argument checks for :mod:`devices`, with MNE-style messages (shared with :mod:`bci`)."""

from bci._check import check_option, check_range, check_type, ensure_int

__all__ = ["check_option", "check_range", "check_type", "ensure_int"]
