"""Turn plain mappings into validated model dataclasses, with errors naming the file and the field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from planner.errors import InputError, kind_of

T = TypeVar("T")
_ADAPTERS: dict[type, TypeAdapter] = {}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]" or str(part).startswith(
                ("function-", "literal[", "nullable[", "union[", "tagged-union[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    value = err.get("input")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown key"
    if kind == "literal_error" and isinstance(value, str) and "[key]" in str(err.get("loc", ())):
        return f"unknown key {value!r} ({err.get('msg', '')})"
    if kind == "missing":
        return "required key is missing"
    if kind in ("finite_number",):
        return f"must be a finite number, got {value!r}"
    msg = str(err.get("msg", "invalid value"))
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind in ("dataclass_type", "model_type", "dict_type") and not isinstance(value, dict):
        return f"expected a mapping, got {shown}"
    return f"{msg[0].lower()}{msg[1:]} (got {shown})" if msg else f"invalid value {shown}"


def build(cls: type[T], data: Any, *, file: str | None = None, prefix: str | None = None) -> T:
    """Validate ``data`` into ``cls``; the first problem becomes an ``InputError`` with its field path."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Prefer the deepest error: it names the offending field rather than its container.
        err = max(errors, key=lambda e: len(e.get("loc", ())))
        field = _path(tuple(err.get("loc", ())))
        if prefix:
            field = f"{prefix}.{field}" if field else prefix
        raise InputError(_problem(err), file=file, field=field or None) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError(f"invalid value: {exc}", file=file, field=prefix) from None


def require_mapping(data: Any, *, file: str | None, field: str | None) -> dict[str, Any]:
    """Return ``data`` if it is a mapping with string keys, else raise an ``InputError``."""
    if not isinstance(data, dict):
        shown = "nothing" if data is None else kind_of(data)
        raise InputError(f"expected a mapping, got {shown}", file=file, field=field)
    for key in data:
        if not isinstance(key, str):
            raise InputError(f"keys must be strings, got {key!r}", file=file, field=field)
    return data


def check_keys(data: dict[str, Any], allowed: set[str], *, file: str | None, field: str | None) -> None:
    """Raise an ``InputError`` for the first key of ``data`` not in ``allowed``."""
    for key in data:
        if key not in allowed:
            path = f"{field}.{key}" if field else str(key)
            raise InputError(f"unknown key (expected one of: {', '.join(sorted(allowed))})", file=file,
                             field=path)
