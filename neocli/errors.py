"""The package's exception types, in one public place.

* :class:`NeoError`: a user mistake (bad input, descriptor, buffer or file); subclasses
  ``ValueError`` and ``RuntimeError`` so code written for pyaogmaneo keeps catching it.
* :class:`OhrError`: a ``.ohr`` file or buffer that cannot be read (a ``NeoError``).
* :class:`OptionError`: an invalid option value; ``field`` names the option (a ``NeoError``).
* :class:`ParameterError`: a data/model error about one parameter's value (e.g. ``resume``).
* :class:`ConflictError`: an option that disagrees with the model a run continues from.
* :class:`NamedError`: a data/model error whose message names parameters (:class:`Param`
  parts), which a caller may spell its own way (the CLI as flags).
"""
from ._errors import NamedError, NeoError, Param
from .ohr import OhrError


class OptionError(NeoError):
    """An invalid option value; ``field`` names the option, ``problem`` says what is wrong."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        self.problem = problem
        super().__init__(f"{field_name} {problem}")


class ParameterError(NeoError):
    """A data or model error about the value of one parameter (e.g. the file given as
    ``resume``): the message is ``"{parameter}: {problem}"``."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        self.problem = problem
        super().__init__(f"{parameter}: {problem}")


class ConflictError(NeoError):
    """An option that disagrees with the model a run continues from (``resume``/``init``):
    ``field`` was ``had`` in the model, the run asks for ``asked``."""

    def __init__(self, source: str, path: str, field_name: str, had: object, asked: object) -> None:
        self.source, self.path, self.field, self.had, self.asked = source, path, field_name, had, asked
        super().__init__(self.render(source, field_name))

    def render(self, source: str, field_name: str) -> str:
        """The message with ``source`` and ``field_name`` spelled as the caller names them."""
        return (f"{source}: '{self.path}' was trained with {field_name}={self.had}, "
                f"but this run asks for {field_name}={self.asked}")


class NeedsForce(NeoError):
    """A refusal a caller may override (a run over an interrupted one, a model larger than the
    memory available). The message is ``template`` with ``{force}``, ``{resume}`` and ``{output}``
    spelled as the caller names them (:meth:`render`; the library spells them as parameters)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.render("force=True", "resume=", "output="))

    def render(self, force: str, resume: str, output: str) -> str:
        """The message with the override and resume parameters spelled ``force``/``resume``/``output``."""
        return self.template.format(force=force, resume=resume, output=output)


__all__ = ["NeoError", "OhrError", "OptionError", "ParameterError", "ConflictError", "NeedsForce", "NamedError",
           "Param"]
