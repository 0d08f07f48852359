"""Error types shared by the whole package."""


class NeoError(ValueError, RuntimeError):
    """A user mistake: bad input, bad descriptor, bad buffer or bad file.

    It subclasses both ``ValueError`` and ``RuntimeError`` so that code written for
    pyaogmaneo (which raises ``RuntimeError``) keeps catching it.
    """
