"""Vector inputs that stand for two adapter requests: a startup given a passphrase command.

A ``startup`` vector may carry ``passphrase_command`` instead of ``passphrase``: the server runs
the configured command for purpose ``startup`` (PASS_01..PASS_03, PASS_06) and starts with its
output. The adapter protocol's ``startup`` takes the passphrase itself, so a runner sends
``run_passphrase_command`` first; when that fails, its error is the test's answer and the data
directory is left as it was. The generator and the runner both split a request here.
"""

from __future__ import annotations

from typing import Any, Final

Json = dict[str, Any]
COMMAND_FIELD: Final = "passphrase_command"
# op -> the adapter op that runs the command first, and the purpose it runs it for.
COMMAND_FIRST: Final = {"startup": ("run_passphrase_command", "startup")}


def split(op: str, params: Json) -> tuple[tuple[str, Json], Json] | None:
    """``((command_op, command_params), rest)`` for a request that runs a command first, where
    ``rest`` lacks the command and needs the command's output as ``passphrase``; else None."""
    if op not in COMMAND_FIRST or COMMAND_FIELD not in params:
        return None
    command_op, purpose = COMMAND_FIRST[op]
    rest = {k: v for k, v in params.items() if k != COMMAND_FIELD}
    return (command_op, {"command": params[COMMAND_FIELD], "purpose": purpose}), rest


def needed_ops(op: str, params: Json) -> set[str]:
    """The adapter ops a runner needs for this request."""
    parts = split(op, params)
    return {op} if parts is None else {op, parts[0][0]}
