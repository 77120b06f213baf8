"""The ``pgkms`` command line: init, verify, rotate, recover, wrap, unwrap, inspect, demo.

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
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from pgkms.bootstrap import bootstrap
from pgkms.errors import HexInvalid, InputError, KmsError
from pgkms.fs import OsFileSystem
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import derive_kek
from pgkms.layout import LOCK_TIMEOUT, PASSPHRASE_COMMAND_TIMEOUT
from pgkms.passphrase import Purpose, acquire_passphrase
from pgkms.recovery import decide, recover_locked
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.shown import one_line, shown
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.tools import demo
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


def _cmd_init(args: argparse.Namespace) -> int:
    passphrase = _acquire(args, args.passphrase_command, Purpose.BOOTSTRAP)
    bootstrap(args.datadir, passphrase, lock_timeout=args.lock_timeout)
    _say(f"{shown(args.datadir)}: created pg_cryptokeys with 3 internal keys")
    return 0


def _startup(args: argparse.Namespace) -> InternalKeys:
    passphrase = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    return startup(args.datadir, passphrase, lock_timeout=args.lock_timeout)


def _cmd_verify(args: argparse.Namespace) -> int:
    _startup(args)
    _say(f"{shown(args.datadir)}: the passphrase opens all 3 internal keys")
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    old = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    new = _acquire(args, args.new_passphrase_command, Purpose.ROTATION)
    rotate(args.datadir, old, new, lock_timeout=args.lock_timeout)
    _say(f"{shown(args.datadir)}: internal keys re-wrapped under the new passphrase")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
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
    verb = "applied" if args.apply else "startup will apply"
    _say(f"recovery decision under the configured passphrase: {decision.value} ({verb})")
    return 0


def _cmd_wrap(args: argparse.Namespace) -> int:
    keys = _startup(args)
    secret = Secret(sys.stdin.buffer.read())
    _say(to_bytea_hex(pg_wrap(keys, secret)))
    return 0


def _cmd_unwrap(args: argparse.Namespace) -> int:
    keys = _startup(args)
    raw = sys.stdin.buffer.read()  # bytes: a text stdin fails on bytes its locale cannot decode
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise HexInvalid(f"standard input: byte {exc.start} is not an ASCII hex digit") from None
    wrapped = parse_bytea_hex(text, "standard input")
    sys.stdout.buffer.write(pg_unwrap(keys, wrapped).reveal())
    return 0


def _cmd_upgrade(args: argparse.Namespace) -> int:
    passphrase = _acquire(args, args.passphrase_command, Purpose.STARTUP)
    copy_keys_for_upgrade(
        args.old_datadir, args.datadir, passphrase, lock_timeout=args.lock_timeout
    )
    _say(
        f"{shown(args.datadir)}: installed the key set of {shown(args.old_datadir)} (checked first)"
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgkms", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    command("init", "create pg_cryptokeys/ with three new internal keys").set_defaults(
        run=_cmd_init
    )
    command("verify", "run the startup procedure: do all keys open?").set_defaults(run=_cmd_verify)
    p = command("rotate", "re-wrap the internal keys under a new passphrase")
    p.add_argument("--new-passphrase-command", required=True, metavar="CMD")
    p.set_defaults(run=_cmd_rotate)
    p = command("recover", "report what an interrupted rotation left", passphrase=False)
    p.add_argument(
        "--passphrase-command",
        metavar="CMD",
        help="also decide what startup will do under this passphrase",
    )
    p.add_argument("--apply", action="store_true", help="carry the decision out")
    _timeout_option(p)
    _lock_option(p)
    p.set_defaults(run=_cmd_recover)
    command("wrap", "pg_wrap: read a secret on stdin, print it wrapped").set_defaults(run=_cmd_wrap)
    command("unwrap", "pg_unwrap: read a wrapped value on stdin, print the secret").set_defaults(
        run=_cmd_unwrap
    )
    p = command("upgrade-keys", "pg_upgrade: install an old cluster's keys in DATADIR")
    p.add_argument("--old-datadir", required=True, metavar="OLD", help="the old cluster")
    p.set_defaults(run=_cmd_upgrade)
    command(
        "inspect", "describe the key directories, no passphrase, read-only: takes no lock", False
    ).set_defaults(run=_cmd_inspect)
    p = sub.add_parser("demo", help="walk through init, verify, wrap, rotate in a temp dir")
    p.add_argument("--workdir", help="where to create the demo data directory")
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
