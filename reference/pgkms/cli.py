"""The ``pgkms`` command line: init, verify, rotate, recover, wrap, unwrap, inspect, demo.

Every failure ends in one line on stderr and an exit code: 1 when a check failed (wrong
passphrase, damaged key file, ...), 2 for bad usage or malformed input. No traceback, ever:
``main`` is the one place that turns typed errors into exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pgkms import demo
from pgkms.bootstrap import bootstrap
from pgkms.errors import InputError, KmsError
from pgkms.fs import OsFileSystem
from pgkms.hexcodec import parse_bytea_hex, to_bytea_hex
from pgkms.inspection import describe
from pgkms.kdf import derive_kek
from pgkms.passphrase import Purpose, acquire_passphrase
from pgkms.recovery import decide, recover
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.upgrade import copy_keys_for_upgrade

EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _cmd_init(args: argparse.Namespace) -> int:
    passphrase = acquire_passphrase(args.passphrase_command, Purpose.BOOTSTRAP)
    bootstrap(args.datadir, passphrase)
    print(f"{args.datadir}: created pg_cryptokeys with 3 internal keys")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    startup(args.datadir, acquire_passphrase(args.passphrase_command, Purpose.STARTUP))
    print(f"{args.datadir}: the passphrase opens all 3 internal keys")
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    old = acquire_passphrase(args.passphrase_command, Purpose.STARTUP)
    new = acquire_passphrase(args.new_passphrase_command, Purpose.ROTATION)
    rotate(args.datadir, old, new)
    print(f"{args.datadir}: internal keys re-wrapped under the new passphrase")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    fs = OsFileSystem()
    for line in describe(fs, args.datadir):
        print(line)
    if args.passphrase_command is None:
        return 0
    kek = derive_kek(acquire_passphrase(args.passphrase_command, Purpose.STARTUP))
    decision = recover(fs, args.datadir, kek) if args.apply else decide(fs, args.datadir, kek)
    verb = "applied" if args.apply else "startup will apply"
    print(f"recovery decision under the configured passphrase: {decision.value} ({verb})")
    return 0


def _cmd_wrap(args: argparse.Namespace) -> int:
    keys = startup(args.datadir, acquire_passphrase(args.passphrase_command, Purpose.STARTUP))
    secret = Secret(sys.stdin.buffer.read())
    print(to_bytea_hex(pg_wrap(keys, secret)))
    return 0


def _cmd_unwrap(args: argparse.Namespace) -> int:
    keys = startup(args.datadir, acquire_passphrase(args.passphrase_command, Purpose.STARTUP))
    wrapped = parse_bytea_hex(sys.stdin.read(), "standard input")
    sys.stdout.buffer.write(pg_unwrap(keys, wrapped).reveal())
    return 0


def _cmd_upgrade(args: argparse.Namespace) -> int:
    passphrase = acquire_passphrase(args.passphrase_command, Purpose.STARTUP)
    copy_keys_for_upgrade(args.old_datadir, args.datadir, passphrase)
    print(f"{args.datadir}: installed the key set of {args.old_datadir} (checked first)")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    for line in describe(OsFileSystem(), args.datadir):
        print(line)
    return 0


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
    p.set_defaults(run=_cmd_recover)
    command("wrap", "pg_wrap: read a secret on stdin, print it wrapped").set_defaults(run=_cmd_wrap)
    command("unwrap", "pg_unwrap: read a wrapped value on stdin, print the secret").set_defaults(
        run=_cmd_unwrap
    )
    p = command("upgrade-keys", "pg_upgrade: install an old cluster's keys in DATADIR")
    p.add_argument("--old-datadir", required=True, metavar="OLD", help="the old cluster")
    p.set_defaults(run=_cmd_upgrade)
    command("inspect", "describe the key directories, no passphrase", False).set_defaults(
        run=_cmd_inspect
    )
    p = sub.add_parser("demo", help="walk through init, verify, wrap, rotate in a temp dir")
    p.add_argument("--workdir", help="where to create the demo data directory")
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "apply", False) and args.passphrase_command is None:
        sys.stderr.write("pgkms: error: --apply needs --passphrase-command\n")
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except InputError as exc:
        sys.stderr.write(f"pgkms: error: {exc}\n")
        return EXIT_USAGE
    except KmsError as exc:
        sys.stderr.write(f"pgkms: error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("pgkms: interrupted\n")
        return 130
