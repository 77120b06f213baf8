"""The ``pgkms`` command line: init, verify, rotate, recover, wrap, unwrap, upgrade-keys, inspect,
demo.

Every failure ends in one line on stderr and an exit code: 1 when a check failed (wrong
passphrase, damaged key file, ...), 2 for bad usage or malformed input, 130 on Ctrl-C, 143 on
SIGTERM. No traceback, ever, for any input bytes in any locale: ``main`` is the one place that
turns typed errors into exit codes, every line printed has its control characters escaped
(a newline in a file name cannot forge a line), and the streams never fail on a character the
locale cannot encode.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from pgkms import __version__
from pgkms.bootstrap import bootstrap
from pgkms.errors import (
    HexInvalid,
    InputError,
    KeyDirectoryMissing,
    KmsError,
    NoValidKeySet,
    StorageError,
)
from pgkms.fs import OsFileSystem, join
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import derive_kek
from pgkms.layout import (
    KEY_DIR,
    KEY_TMP_DIR,
    LOCK_FILE,
    LOCK_TIMEOUT,
    PASSPHRASE_COMMAND_TIMEOUT,
)
from pgkms.passphrase import Purpose, acquire_passphrase
from pgkms.recovery import Decision, decide, recover_locked
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.shown import one_line, shown
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.tools import demo, keycheck
from pgkms.tools.hexcodec import parse_bytea_hex, to_bytea_hex
from pgkms.tools.inspection import describe
from pgkms.tools.stopping import Stopped, stop_on_sigterm
from pgkms.upgrade import copy_keys_for_upgrade

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _say(line: str, stream: TextIO | None = None) -> None:
    """Print one line: control characters escaped, so that it stays one line."""
    (stream or sys.stdout).write(one_line(line) + "\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _say(f"{self.prog}: error: {message}", sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _acquire(args: argparse.Namespace, command: str, purpose: Purpose) -> Secret:
    return acquire_passphrase(command, purpose, args.passphrase_timeout)


# What ``verify`` cannot see (spec finding SEC_IV): said every time it succeeds.
VERIFY_LIMIT = (
    "note: verify cannot detect a modified IV in a key file: the HMAC does not cover the IV, so "
    "a changed IV silently changes the key it opens to (spec finding SEC_IV); protect "
    "pg_cryptokeys against modification, not only against reading, or record the keys with "
    "--save-key-check FILE and verify with --key-check FILE"
)


def _require_datadir(datadir: str) -> None:
    """A command that reads an existing cluster refuses a path that is not a directory."""
    if not os.path.isdir(datadir):
        what = "does not exist" if not os.path.lexists(datadir) else "is not a directory"
        raise InputError(f"{shown(datadir)}: {what}; expected the cluster's data directory")


def _make_datadir(fs: OsFileSystem, datadir: str) -> list[str]:
    """``init`` creates a missing data directory (and its parents), mode 0700, as initdb does.

    Through the filesystem layer, each new directory made durable in its parent. Returns the
    directories it created, outermost first.
    """
    missing: list[str] = []
    path = os.path.abspath(datadir)
    try:
        while fs.stat(path) is None and path != os.path.dirname(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            fs.mkdir(directory, 0o700)
            fs.fsync_dir(os.path.dirname(directory))
    except StorageError as exc:
        raise StorageError(f"cannot create the data directory: {exc.message}") from None
    return list(reversed(missing))


def _remove_made_datadir(fs: OsFileSystem, created: list[str]) -> None:
    """After a failed bootstrap, remove what ``init`` created, as initdb does: the lock file the
    attempt left and the then empty directories. Anything else found there is left alone."""
    try:
        if fs.stat(join(created[-1], LOCK_FILE)) is not None:
            fs.unlink(join(created[-1], LOCK_FILE))
        for directory in reversed(created):
            if fs.list_dir(directory):
                return
            fs.rmdir(directory)
            fs.fsync_dir(os.path.dirname(directory))
    except KmsError:
        return  # the bootstrap's own error is the one to report


def _cmd_init(args: argparse.Namespace) -> int:
    passphrase = _acquire(args, args.passphrase_command, Purpose.BOOTSTRAP)
    fs = OsFileSystem()
    created = _make_datadir(fs, args.datadir)
    if created:
        _say(f"{shown(args.datadir)}: created the data directory (mode 0700)")
    try:
        bootstrap(args.datadir, passphrase, lock_timeout=args.lock_timeout)
    except KmsError:
        if created:
            _remove_made_datadir(fs, created)
        raise
    _say(f"{shown(args.datadir)}: created pg_cryptokeys with 3 internal keys")
    return 0


def _startup(args: argparse.Namespace) -> InternalKeys:
    passphrase = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    return startup(args.datadir, passphrase, lock_timeout=args.lock_timeout)


def _save_key_check(path: str, datadir: str, keys: InternalKeys) -> None:
    """A key-check file inside PGDATA would be as writable as the key files it checks."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    root = os.path.realpath(datadir)
    if os.path.commonpath([folder, root]) == root:
        raise InputError(
            f"{shown(path)}: inside the data directory; keep the key-check file outside "
            "PGDATA, where PGDATA's writers cannot write"
        )
    keycheck.save(path, keys)
    _say(
        f"{shown(path)}: key-check values saved; keep the file where PGDATA's writers cannot "
        "write, and verify with --key-check"
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    keys = _startup(args)
    _say(f"{shown(args.datadir)}: the passphrase opens all 3 internal keys")
    if args.key_check is not None:
        keycheck.check(args.key_check, keys)
        _say(f"all 3 internal keys are the ones {shown(args.key_check)} recorded")
        return 0
    if args.save_key_check is not None:
        _save_key_check(args.save_key_check, args.datadir, keys)
        return 0
    _say(VERIFY_LIMIT)
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    old = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    new = _acquire(args, args.new_passphrase_command, Purpose.ROTATION)
    rotate(args.datadir, old, new, lock_timeout=args.lock_timeout)
    _say(f"{shown(args.datadir)}: internal keys re-wrapped under the new passphrase")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    _require_datadir(args.datadir)
    fs = OsFileSystem()
    for line in describe(fs, args.datadir):
        _say(line)
    if args.passphrase_command is None:
        return 0
    kek = derive_kek(_acquire(args, args.passphrase_command, Purpose.STARTUP))
    if args.apply:
        decision = recover_locked(fs, args.datadir, kek, args.lock_timeout)
    else:
        decision = decide(fs, args.datadir, kek)  # read-only, like inspect: no lock
    if decision is Decision.FAIL:  # what --apply and startup raise: the same code, exit 1
        raise NoValidKeySet(
            f"{shown(args.datadir)}: neither {KEY_DIR} nor {KEY_TMP_DIR} holds a complete key "
            "set that opens under this passphrase; startup will refuse, nothing was changed"
        )
    verb = "applied" if args.apply else "startup will apply"
    _say(f"recovery decision under the configured passphrase: {decision.value} ({verb})")
    return 0


def _cmd_wrap(args: argparse.Namespace) -> int:
    keys = _startup(args)
    secret = Secret(sys.stdin.buffer.read())
    _say(to_bytea_hex(pg_wrap(keys, secret)))
    return 0


def _bytea_input(raw: bytes) -> bytes:
    """What ``pg_unwrap`` reads as bytea hex input: ``\\x`` and hex digits, either case.

    The ``\\x`` prefix is required: without it PostgreSQL reads the text in bytea's escape
    format, as other bytes. Upper-case digits are accepted, as PostgreSQL accepts them.
    Surrounding whitespace (the newline ``pgkms wrap`` prints) is ignored.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise HexInvalid(f"standard input: byte {exc.start} is not an ASCII hex digit") from None
    if not text.strip().startswith("\\x"):
        raise HexInvalid(
            "standard input: expected bytea hex text starting with \\x (what pgkms wrap prints)"
        )
    return parse_bytea_hex(text, "standard input")


def _cmd_unwrap(args: argparse.Namespace) -> int:
    raw = sys.stdin.buffer.read()  # bytes: a text stdin fails on bytes its locale cannot decode
    wrapped = _bytea_input(raw)  # checked first: bad input costs no passphrase command
    keys = _startup(args)
    sys.stdout.buffer.write(pg_unwrap(keys, wrapped).view())
    return 0


def _upgrade_hint(args: argparse.Namespace) -> str:
    """Which side of an upgrade lacks its key directory, and what to do about it."""
    if not os.path.lexists(os.path.join(args.old_datadir, KEY_DIR)):
        return f"--old-datadir must name the cluster being upgraded, whose {KEY_DIR} holds the keys"
    return (
        f"the new cluster needs key management on first: run pgkms init {shown(args.datadir)} "
        "with the old cluster's passphrase command (as initdb would), then upgrade-keys again"
    )


def _cmd_upgrade(args: argparse.Namespace) -> int:
    passphrase = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    try:
        copy_keys_for_upgrade(
            args.old_datadir, args.datadir, passphrase, lock_timeout=args.lock_timeout
        )
    except KeyDirectoryMissing as exc:
        raise KeyDirectoryMissing(f"{exc.message}; hint: {_upgrade_hint(args)}") from None
    _say(
        f"{shown(args.datadir)}: installed the key set of {shown(args.old_datadir)} (checked first)"
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    _require_datadir(args.datadir)
    for line in describe(OsFileSystem(), args.datadir):
        _say(line)
    return 0


def _seconds(minimum: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, at least (or above) ``minimum``."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds {bound}") from None
        ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number of seconds {bound}")
        return value

    return parse


def _lock_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-timeout",
        type=_seconds(0, inclusive=True),
        default=LOCK_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for another procedure's lock (default {LOCK_TIMEOUT:g})",
    )


def _timeout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passphrase-timeout",
        type=_seconds(0, inclusive=False),
        default=PASSPHRASE_COMMAND_TIMEOUT,
        metavar="SECONDS",
        help="kill a passphrase command still running after this long "
        f"(default {PASSPHRASE_COMMAND_TIMEOUT:g})",
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    return demo.run(args.workdir)


# The top-level help, in plain text (argparse prints it as is).
DESCRIPTION = (
    "The reference implementation of PostgreSQL's 2020 cluster key manager (kms_v10), on a "
    "data directory: create, verify and rotate its keys, recover an interrupted rotation, "
    "wrap and unwrap secrets as pg_wrap/pg_unwrap do, carry keys through pg_upgrade."
)
EPILOG = (
    "Exit status: 0 success, 1 a check failed, 2 bad usage or malformed input, 130 interrupted, "
    "143 terminated. Errors are one line on standard error ending in a stable [code]. "
    "'pgkms COMMAND --help' describes each command."
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgkms", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"pgkms {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND", title="commands"
    )

    def command(name: str, help_text: str, passphrase: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("datadir", metavar="DATADIR", help="the cluster's data directory")
        if passphrase:
            p.add_argument(
                "--passphrase-command",
                required=True,
                metavar="CMD",
                help="shell command printing the cluster passphrase (%%p: prompt, %%%%: %%)",
            )
            _timeout_option(p)
            _lock_option(p)
        return p

    command(
        "init",
        "create pg_cryptokeys/ with three new internal keys (and DATADIR, mode 0700, when it "
        "does not exist, as initdb does)",
    ).set_defaults(run=_cmd_init)
    p = command(
        "verify",
        "run the startup procedure: do all keys open? (a modified IV goes unseen, SEC_IV, "
        "unless a key-check file is given)",
    )
    check_options = p.add_mutually_exclusive_group()
    check_options.add_argument(
        "--key-check",
        metavar="FILE",
        help="also require the keys to be those FILE recorded (detects a modified IV: SEC_IV)",
    )
    check_options.add_argument(
        "--save-key-check",
        metavar="FILE",
        help="record the keys' key-check values in a new FILE, kept outside PGDATA",
    )
    p.set_defaults(run=_cmd_verify)
    p = command("rotate", "re-wrap the internal keys under a new passphrase")
    p.add_argument(
        "--new-passphrase-command",
        required=True,
        metavar="CMD",
        help="shell command printing the new passphrase, 64 to 1024 bytes (%%p: prompt)",
    )
    p.set_defaults(run=_cmd_rotate)
    p = command("recover", "report what an interrupted rotation left", passphrase=False)
    p.add_argument(
        "--passphrase-command",
        metavar="CMD",
        help="also decide what startup will do under this passphrase (exit 1, "
        "no_valid_key_set, when it would refuse)",
    )
    p.add_argument("--apply", action="store_true", help="carry the decision out")
    _timeout_option(p)
    _lock_option(p)
    p.set_defaults(run=_cmd_recover)
    command("wrap", "pg_wrap: read a secret on stdin, print it wrapped").set_defaults(run=_cmd_wrap)
    command(
        "unwrap", "pg_unwrap: read a wrapped value (\\x and hex) on stdin, print the secret"
    ).set_defaults(run=_cmd_unwrap)
    p = command("upgrade-keys", "pg_upgrade: install an old cluster's keys in DATADIR")
    p.add_argument("--old-datadir", required=True, metavar="OLD", help="the old cluster")
    p.set_defaults(run=_cmd_upgrade)
    command(
        "inspect", "describe the key directories, no passphrase, read-only: takes no lock", False
    ).set_defaults(run=_cmd_inspect)
    demo_help = (
        "walk through init, verify, wrap, unwrap and rotate on a throwaway data directory, "
        "printing each step"
    )
    p = sub.add_parser("demo", help=demo_help, description=demo_help)
    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="where to create the demo's temporary directory (default: the system's), removed "
        "at the end",
    )
    p.set_defaults(run=_cmd_demo)
    return parser


def _never_fail_to_print() -> None:
    """No locale may turn a character into a traceback: escape what it cannot encode."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _never_fail_to_print()
    with stop_on_sigterm():
        try:
            return _run(argv)
        except KeyboardInterrupt:
            _say("pgkms: interrupted", sys.stderr)
            return EXIT_INTERRUPTED
        except Stopped:
            _say("pgkms: terminated", sys.stderr)
            return EXIT_TERMINATED


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "apply", False) and args.passphrase_command is None:
        _say("pgkms: error: --apply needs --passphrase-command", sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except InputError as exc:
        _say(f"pgkms: error: {exc}", sys.stderr)
        return EXIT_USAGE
    except KmsError as exc:
        _say(f"pgkms: error: {exc}", sys.stderr)
        return EXIT_FAILED
