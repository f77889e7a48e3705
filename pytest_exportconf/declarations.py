"""What a project declares, checked before anything runs: ``[tool.exportconf]``, ``ModelSystem`` fields
and the ``--exportconf-*`` options, as pydantic schemas. A broken declaration is a usage error naming
the file, key and value; it is never measured (a ``--`` from a typo would be a grade nobody can trust).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class SystemFields(BaseModel):
    """What every declared system has, from pyproject.toml or a ``ModelSystem`` in a conftest."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(max_length=100, description="the system's name in cell ids and cache paths")
    label: str = ""
    task: Literal["regression", "classification"] = "regression"
    outputs: Literal["probabilities", "logits"] = Field(
        "probabilities", description="what a classifier's floating outputs are")
    atol: float = Field(1e-4, gt=0)
    rtol: float = Field(0.0, ge=0)
    input_name: str = Field("x", min_length=1, description="name of a single unnamed golden input")
    trust: bool = Field(False, description="load this system's artifacts even when a scanner flags them")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        from .cache import check_name

        return check_name(name, "system name")  # a name that could escape the cache directory: an error


class SystemTable(SystemFields):
    """One ``[[tool.exportconf.systems]]`` table: a factory (with its framework), or pre-exported files."""

    framework: str | None = None
    factory: str | None = Field(None, pattern=IMPORT_PATH, description="'package.module:function'")
    artifacts: dict[str, str] | None = None
    golden: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SystemTable:
        if (self.factory is None) == (self.artifacts is None):
            raise ValueError("give either 'factory' (with 'framework') or 'artifacts' (with 'golden')")
        if self.factory is not None and self.framework is None:
            raise ValueError("a factory needs 'framework' (the framework its model comes from)")
        if self.artifacts is not None:
            if self.golden is None:
                raise ValueError("artifacts need 'golden' (an .npz with the inputs and expected outputs)")
            if self.framework is not None:
                raise ValueError("'framework' is for factories; pre-exported artifacts have none")
            if not self.artifacts:
                raise ValueError("'artifacts' is empty; map a format to a file, e.g. {onnx = \"model.onnx\"}")
        return self


class ProjectTable(BaseModel):
    """``[tool.exportconf]``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    systems: list[SystemTable] = []
    require: list[str] | str = []
    expectations: str | None = None
    strict: bool = False


class Options(BaseModel):
    """The numeric ``--exportconf-*`` options and their ini keys (text, converted here)."""

    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(gt=0)
    repeats: int = Field(gt=0)
    seed: int = Field(ge=0)
    sandbox_memory: float = Field(gt=0, description="GiB of address space for each sandboxed load")


_TYPE_BRANCHES = ("str", "int", "float", "bool", "dict", "list")  # pydantic's names for union branches


def problems(error: ValidationError, where: str) -> str:
    """A pydantic error as lines naming the place, the key and the value that was given."""
    found: dict[tuple[str, str], list[str]] = {}
    for e in error.errors():
        loc = ""
        for part in e["loc"]:
            if isinstance(part, str) and (part in _TYPE_BRANCHES or "[" in part):
                continue  # "require.list[str]": which branch of a union failed says nothing to a user
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        if where.endswith("-"):  # an option: --exportconf-sandbox-memory, not sandbox_memory
            loc = loc.replace("_", "-")
        # a table-wide rule (loc empty) is about the table, not one value: do not print the whole table
        given = "" if e["type"] in ("missing", "extra_forbidden") or not loc else f" = {e['input']!r}"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        found.setdefault((loc, given), []).append(msg)
    # "--exportconf-" + "timeout", "... systems[0]" + ".atol", "[tool.exportconf]" + " require"
    sep = "" if where.endswith("-") else "." if where.endswith("]") and not where.endswith("exportconf]") else " "
    return "\n".join(f"{where}{sep + loc if loc else ''}{given}: {' or '.join(dict.fromkeys(msgs))}"
                     for (loc, given), msgs in found.items())


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """``model`` validated from ``data``; a ValueError listing every problem otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ValueError(problems(e, where)) from None
