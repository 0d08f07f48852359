"""Error types shared by the whole package."""


class NeoError(ValueError, RuntimeError):
    """A user mistake: bad input, bad descriptor, bad buffer or bad file.

    It subclasses both ``ValueError`` and ``RuntimeError`` so that code written for
    pyaogmaneo (which raises ``RuntimeError``) keeps catching it.
    """


class Param(str):
    """A parameter name inside a :class:`NamedError` message."""

    __slots__ = ()


class NamedError(NeoError):
    """A data or model error whose message names parameters: built from text parts and
    :class:`Param` names, spelled as the library's parameter names in ``str(e)`` and as the
    caller names them through :meth:`render` (the CLI passes its flag for each name)."""

    #: Names whose library spelling is not the name itself.
    LIBRARY = {"no_decompress": "decompress=False"}

    def __init__(self, *parts: str) -> None:
        self.parts = parts
        super().__init__(self.render(lambda name: self.LIBRARY.get(name, name)))

    def names(self) -> list[str]:
        """The parameter names the message mentions."""
        return [str(p) for p in self.parts if isinstance(p, Param)]

    def render(self, spell) -> str:
        """The message with each parameter name spelled ``spell(name)``."""
        return "".join(spell(str(p)) if isinstance(p, Param) else p for p in self.parts)
