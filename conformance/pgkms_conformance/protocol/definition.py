"""The adapter protocol's one definition, ``spec/adapter-protocol.toml``, as typed data.

The file holds every operation (request and result fields, error codes, capability,
requirements), the feature flags, the environment rules, pipelining and the harness's limits.
``load()`` reads and checks it: an unknown field type, an undeclared error code or group, a
flag that does not exist or a requirement id of the wrong shape is a ``DefinitionError`` naming
the operation and field, never a traceback. The generators (``render_schemas``,
``render_rst``) and the drift tests read it through this module only.

The definition lives in the source tree, next to the specification it belongs to; the JSON
Schemas generated from it ship with the package, so the harness never needs the file itself.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pgkms_conformance.ids import REQUIREMENT_ID_RE

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
DEFINITION_PATH: Final = REPO_ROOT / "spec" / "adapter-protocol.toml"

# The field types of the definition (see the file's header); named types add to these.
BASE_TYPES: Final = frozenset({"hex", "text", "integer", "boolean", "seconds", "enum", "list"})
# The type of a trace: built from [[trace_ops]] and [[trace_fields]], not from [types].
TRACE_TYPE: Final = "fs_trace"
# What a field's table may say besides its name, type and documentation.
_FIELD_KEYS: Final = frozenset(
    {
        "name", "type", "doc", "optional", "flag", "bytes", "min_bytes", "max_bytes",
        "pattern", "min_length", "minimum", "maximum", "exclusive_minimum", "const",
        "values", "items", "count", "unique", "nullable", "default",
    }
)  # fmt: skip


class DefinitionError(Exception):
    """The protocol definition is inconsistent; the message says where and what."""


@dataclass(frozen=True)
class TypeSpec:
    """A field's type: a base type with its constraints, or a named shared type."""

    type: str
    bytes: int | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None
    pattern: str | None = None
    min_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    const: Any = None
    values: tuple[str, ...] = ()
    items: TypeSpec | None = None
    count: int | None = None
    unique: bool = False
    nullable: bool = False
    default: float | None = None


@dataclass(frozen=True)
class Field:
    name: str
    spec: TypeSpec
    doc: str
    optional: bool = False
    flag: str | None = None


@dataclass(frozen=True)
class NamedType:
    name: str
    spec: TypeSpec
    doc: str


@dataclass(frozen=True)
class Operation:
    name: str
    summary: str
    requirements: tuple[str, ...]
    errors: tuple[str, ...]  # key manager codes, groups expanded, in the definition's order
    schema_note: str
    result_note: str
    request: tuple[Field, ...] = ()
    result: tuple[Field, ...] = ()
    session: bool = False

    @property
    def capability(self) -> str | None:
        """The capability that enables the operation: its name; none for hello and shutdown."""
        return None if self.session else self.name

    def request_field(self, name: str) -> Field:
        return next(f for f in self.request if f.name == name)


@dataclass(frozen=True)
class Flag:
    name: str
    summary: str
    requirements: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class TraceOp:
    op: str
    fields: tuple[str, ...]
    meaning: str


@dataclass(frozen=True)
class EnvironmentRule:
    topic: str
    rule: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Limit:
    name: str
    value: float
    unit: str
    doc: str
    source: str | None = None


@dataclass(frozen=True)
class Pipelining:
    window: int
    rules: tuple[str, ...]
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Definition:
    version: int
    name: str
    schema_id_base: str
    requirements: tuple[str, ...]
    types: dict[str, NamedType]
    key_manager_codes: tuple[str, ...]
    protocol_codes: dict[str, str]  # code -> when it is answered
    error_groups: dict[str, tuple[str, ...]]
    errors_doc: str
    flags: tuple[Flag, ...]
    trace_ops: tuple[TraceOp, ...]
    trace_fields: tuple[Field, ...]
    environment: tuple[EnvironmentRule, ...]
    pipelining: Pipelining
    limits: tuple[Limit, ...]
    operations: tuple[Operation, ...] = field(default=())

    def operation(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)

    @property
    def capability_operations(self) -> tuple[Operation, ...]:
        """The operations an adapter lists in hello when it implements them."""
        return tuple(op for op in self.operations if not op.session)

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.flags)

    @property
    def error_codes(self) -> tuple[str, ...]:
        """Every code an error answer may carry (ADP_03), in the schema's order."""
        return (*self.key_manager_codes, *self.protocol_codes)

    def sizes_used(self) -> tuple[int, ...]:
        """Every exact hex size a field uses, for common.json's sized $defs."""
        found: set[int] = set()

        def visit(spec: TypeSpec) -> None:
            if spec.type == "hex" and spec.bytes is not None:
                found.add(spec.bytes)
            if spec.items is not None:
                visit(spec.items)

        for op in self.operations:
            for f in (*op.request, *op.result):
                visit(f.spec)
        return tuple(sorted(found))


# -- reading ----------------------------------------------------------------------------------
def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"{where}: '{key}' must be a non-empty string")
    return value


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DefinitionError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _requirements(table: dict[str, Any], where: str) -> tuple[str, ...]:
    ids = _strings(table, "requirements", where)
    bad = [i for i in ids if not REQUIREMENT_ID_RE.match(i)]
    if bad:
        raise DefinitionError(f"{where}: not requirement ids: {', '.join(bad)}")
    return ids


def _number(table: dict[str, Any], where: str) -> float:
    value = table.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DefinitionError(f"{where}: 'value' must be a number")
    return value


def _type_spec(table: dict[str, Any], where: str, known: frozenset[str]) -> TypeSpec:
    kind = table.get("type")
    if kind not in known:
        raise DefinitionError(f"{where}: unknown type {kind!r} (known: {', '.join(sorted(known))})")
    items = None
    if kind == "list":
        raw = table.get("items")
        if not isinstance(raw, dict):
            raise DefinitionError(f"{where}: a list needs 'items', an inline type")
        items = _type_spec(raw, f"{where} items", known)
    elif "items" in table:
        raise DefinitionError(f"{where}: 'items' belongs to lists only")
    if kind == "enum" and not table.get("values"):
        raise DefinitionError(f"{where}: an enum needs 'values'")
    for key in ("bytes", "min_bytes", "max_bytes", "min_length", "count"):
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise DefinitionError(f"{where}: '{key}' must be an integer")
    return TypeSpec(
        type=str(kind),
        bytes=table.get("bytes"),
        min_bytes=table.get("min_bytes"),
        max_bytes=table.get("max_bytes"),
        pattern=table.get("pattern"),
        min_length=table.get("min_length"),
        minimum=table.get("minimum"),
        maximum=table.get("maximum"),
        exclusive_minimum=table.get("exclusive_minimum"),
        const=table.get("const"),
        values=_strings(table, "values", where),
        items=items,
        count=table.get("count"),
        unique=bool(table.get("unique", False)),
        nullable=bool(table.get("nullable", False)),
        default=table.get("default"),
    )


def _field(
    table: dict[str, Any], where: str, known: frozenset[str], flags: frozenset[str]
) -> Field:
    name = _text(table, "name", where)
    where = f"{where} field {name!r}"
    unknown = sorted(set(table) - _FIELD_KEYS)
    if unknown:
        raise DefinitionError(f"{where}: unknown key(s) {', '.join(unknown)}")
    flag = table.get("flag")
    if flag is not None and flag not in flags:
        raise DefinitionError(f"{where}: unknown feature flag {flag!r}")
    return Field(
        name=name,
        spec=_type_spec(table, where, known),
        doc=_text(table, "doc", where),
        optional=bool(table.get("optional", False)),
        flag=flag,
    )


def _expand_errors(
    raw: tuple[str, ...], groups: dict[str, tuple[str, ...]], codes: frozenset[str], where: str
) -> tuple[str, ...]:
    expanded: list[str] = []
    for entry in raw:
        if entry.startswith("@"):
            if entry[1:] not in groups:
                raise DefinitionError(f"{where}: unknown error group {entry!r}")
            members = groups[entry[1:]]
        else:
            members = (entry,)
        for code in members:
            if code not in codes:
                raise DefinitionError(f"{where}: unknown error code {code!r}")
            if code not in expanded:
                expanded.append(code)
    return tuple(expanded)


def _operation(
    table: dict[str, Any],
    known: frozenset[str],
    flags: frozenset[str],
    groups: dict[str, tuple[str, ...]],
    codes: frozenset[str],
) -> Operation:
    name = _text(table, "name", "an operation")
    where = f"operation {name!r}"
    request = tuple(_field(f, f"{where} request", known, flags) for f in table.get("request", []))
    result = tuple(_field(f, f"{where} result", known, flags) for f in table.get("result", []))
    for direction, fields in (("request", request), ("result", result)):
        names = [f.name for f in fields]
        if len(set(names)) != len(names) or {"id", "op"} & set(names):
            raise DefinitionError(f"{where} {direction}: duplicate or reserved field names")
    note = _text(table, "schema_note", where)
    return Operation(
        name=name,
        summary=_text(table, "summary", where),
        requirements=_requirements(table, where),
        errors=_expand_errors(_strings(table, "errors", where), groups, codes, where),
        schema_note=note,
        result_note=str(table.get("result_note", note)),
        request=request,
        result=result,
        session=bool(table.get("session", False)),
    )


def parse(document: dict[str, Any]) -> Definition:
    """Check a parsed definition and build its typed form."""
    protocol = document.get("protocol", {})
    flag_tables = document.get("flags", [])
    flags = tuple(
        Flag(
            name=_text(t, "name", "a flag"),
            summary=_text(t, "summary", f"flag {t.get('name')!r}"),
            requirements=_requirements(t, f"flag {t.get('name')!r}"),
            rules=_strings(t, "rules", f"flag {t.get('name')!r}"),
        )
        for t in flag_tables
    )
    flag_names = frozenset(f.name for f in flags)
    raw_types = document.get("types", {})
    base = BASE_TYPES
    named = {
        name: NamedType(name, _type_spec(t, f"type {name!r}", base), _text(t, "doc", name))
        for name, t in raw_types.items()
    }
    known = base | frozenset(named) | {TRACE_TYPE}
    errors = document.get("errors", {})
    key_manager = _strings(errors, "key_manager", "errors")
    protocol_codes = dict(errors.get("protocol", {}))
    codes = frozenset(key_manager) | frozenset(protocol_codes)
    groups = {
        name: _expand_errors(tuple(members), {}, codes, f"error group {name!r}")
        for name, members in errors.get("groups", {}).items()
    }
    trace_ops = tuple(
        TraceOp(
            op=_text(t, "op", "a trace op"),
            fields=_strings(t, "fields", f"trace op {t.get('op')!r}"),
            meaning=_text(t, "meaning", f"trace op {t.get('op')!r}"),
        )
        for t in document.get("trace_ops", [])
    )
    trace_fields = tuple(
        _field(t, "trace entry", known - {TRACE_TYPE}, flag_names)
        for t in document.get("trace_fields", [])
    )
    entry_names = {f.name for f in trace_fields}
    for op in trace_ops:
        if not set(op.fields) <= entry_names:
            raise DefinitionError(f"trace op {op.op!r}: fields not among [[trace_fields]]")
    pipelining = document.get("pipelining", {})
    version = protocol.get("version")
    if version != 1:
        raise DefinitionError(f"protocol: version {version!r}, this toolkit knows 1")
    window = pipelining.get("window")
    if not isinstance(window, int) or window < 1:
        raise DefinitionError("pipelining: 'window' must be a positive integer")
    definition = Definition(
        version=version,
        name=_text(protocol, "name", "protocol"),
        schema_id_base=_text(protocol, "schema_id_base", "protocol"),
        requirements=_requirements(protocol, "protocol"),
        types=named,
        key_manager_codes=key_manager,
        protocol_codes=protocol_codes,
        error_groups=groups,
        errors_doc=_text(errors, "doc", "errors"),
        flags=flags,
        trace_ops=trace_ops,
        trace_fields=trace_fields,
        environment=tuple(
            EnvironmentRule(
                topic=_text(t, "topic", "an environment rule"),
                rule=_text(t, "rule", f"environment {t.get('topic')!r}"),
                requirements=_requirements(t, f"environment {t.get('topic')!r}"),
            )
            for t in document.get("environment", [])
        ),
        pipelining=Pipelining(
            window=window,
            rules=_strings(pipelining, "rules", "pipelining"),
            requirements=_requirements(pipelining, "pipelining"),
        ),
        limits=tuple(
            Limit(
                name=_text(t, "name", "a limit"),
                value=_number(t, f"limit {t.get('name')!r}"),
                unit=_text(t, "unit", f"limit {t.get('name')!r}"),
                doc=_text(t, "doc", f"limit {t.get('name')!r}"),
                source=t.get("source"),
            )
            for t in document.get("limits", [])
        ),
        operations=tuple(
            _operation(t, known, flag_names, groups, codes) for t in document.get("operations", [])
        ),
    )
    names = [op.name for op in definition.operations]
    if len(set(names)) != len(names):
        raise DefinitionError("operations: a name appears twice")
    return definition


def load(path: Path = DEFINITION_PATH) -> Definition:
    """Read and check the definition file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(
            f"{path}: cannot read the protocol definition ({exc.strerror}); "
            "it lives in the source tree, not in an installed package"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{path}: not valid TOML: {exc}") from None
    return parse(document)
