# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of what an operator typed, shared by every module: one error type, one integer check.

Every check runs before anything is written and names the option in one line.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input found before any write; the message names the option."""


def is_int(value):
    """An int that is not a bool: Python counts True as 1, and Ansible's int type lets it through."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value, option, low=None, high=None, what="an integer"):
    """``value`` when it is an integer within [low, high]; else an InputError naming ``option``."""
    span = " from %d to %d" % (low, high) if low is not None and high is not None else ""
    if not is_int(value):
        raise InputError("%s must be %s%s, got %r" % (option, what, span, value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError("%s must be %s%s, got %r, which is out of range" % (option, what, span, value))
    return value


__all__ = ["InputError", "is_int", "check_int"]
