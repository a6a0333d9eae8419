"""Errors the user can act on; the CLI and UI show their message without a traceback."""


class RagError(Exception):
    """Base class: a problem explained in words the user can act on."""


class InputError(RagError):
    """A file or question that cannot be used (empty, binary, unknown type, too long)."""


class IndexStoreError(RagError):
    """A missing, corrupted or mismatched index."""


class ModelError(RagError):
    """A model that cannot be found, prepared or loaded."""
