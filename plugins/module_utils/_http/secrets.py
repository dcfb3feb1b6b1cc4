# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets: what they look like, and scrubbing them from every output.

A Pangolin key is ``<key id>.<secret>`` (``split_key`` is the one reader of that
form); its secret half alone is just as sensitive, and its key id followed by a
dot gives it away in a text.
"""

from __future__ import annotations

import re

REDACTED = "**REDACTED**"
KEY_FORM = re.compile(r"^([A-Za-z0-9]+)\.([^\s.]+)$")

MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")  # "application/json": a header value, never a key


def mentions_credentials(text):
    """Whether a text (a mapping's expression) sends credentials: an Authorization header, a bearer token."""
    lowered = str(text or "").lower()
    return "authorization" in lowered or "bearer " in lowered or "x-api-key" in lowered


def looks_secret(literal):
    """Whether a string literal of a text that sends credentials could be a key: long, no spaces, and not a word,
    a header name, a media type or a URL."""
    looks_like_text = (any(c.isspace() for c in literal), "://" in literal, MEDIA_TYPE.match(literal),
                       re.match(r"^[A-Za-z]+(?:[-_][A-Za-z]+)*$", literal))
    return len(literal) >= 12 and not any(looks_like_text)


class Secrets(object):
    """Values that must never leave the module, and how to scrub them. Whole values are hidden: a password or a
    token as it is, a Pangolin key as a whole and its secret half alone; never a fragment of anything else."""

    def __init__(self):
        self._values = set()

    def add(self, value, *parts):
        """A secret as a whole (a token, a password), and parts of it that give it away on their own."""
        for secret in (value,) + parts:
            if secret and isinstance(secret, str) and len(secret) >= 4:
                self._values.add(secret)

    def add_key(self, value):
        """A key ``<id>.<secret>`` (Pangolin's form): the secret alone is just as sensitive."""
        parts = split_key(value)
        self.add(value, *(parts[1:] if parts else ()))

    def add_credentials(self, text):
        """Learn the credentials written into a text (a hand-written mapping's bearer token, say).

        In a text that sends credentials, every string literal that could be a key is learned
        too: a hand-written mapping may build its header with ``+`` or an f-string. Words,
        header names and URLs are not secrets, and hiding them would hide the output's meaning.
        """
        text = str(text or "")
        for found in re.findall(r"(?i)\b(?:bearer|basic|token)\s+([^\s\"'\\]{8,})", text):
            self.add_key(found)
        if mentions_credentials(text):
            for literal in re.findall(r"[\"']([^\s\"'\\]{12,})[\"']", text):
                if looks_secret(literal):
                    self.add_key(literal)

    def values(self):
        return sorted(self._values)

    def scrub(self, text):
        if not isinstance(text, str):
            return text
        for value in sorted(self._values, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, REDACTED)
        return text

    def scrub_obj(self, obj):
        """Scrub secrets inside any JSON-like value."""
        if isinstance(obj, dict):
            return dict((k, self.scrub_obj(v)) for k, v in obj.items())
        if isinstance(obj, list):
            return [self.scrub_obj(v) for v in obj]
        return self.scrub(obj)


def split_key(value):
    """(key id, secret) of a key of the form ``<key id>.<secret>``, or None for anything else."""
    match = KEY_FORM.match(value) if isinstance(value, str) else None
    return (match.group(1), match.group(2)) if match else None


def sends_key(text, key):
    """Whether a text is or sends this key: its secret half gives it away, and so does its key id before the dot."""
    parts = split_key(key)
    if parts is None:
        return False
    text = str(text or "")
    return parts[1] in text or bool(re.search(r"(?<![A-Za-z0-9])%s\." % re.escape(parts[0]), text))


__all__ = ["REDACTED", "Secrets", "split_key", "sends_key", "mentions_credentials"]
