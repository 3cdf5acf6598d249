"""Index problems a user can act on; the CLI prints their message, never a traceback."""

from __future__ import annotations


class IndexError_(RuntimeError):
    """Base for index problems a user can act on."""


class IndexLockedError(IndexError_):
    """Another process owns the embedded index folder."""


class IndexMismatchError(IndexError_):
    """The index was built with another embedding model or schema."""


class LegacyIndexError(IndexError_):
    """An index folder written by an older wikibot that could not be carried over by itself."""


class IndexCopyError(IndexError_):
    """A copy into a Qdrant server cannot go ahead (target exists, server unreachable…)."""
