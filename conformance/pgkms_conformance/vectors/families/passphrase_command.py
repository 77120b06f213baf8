"""``passphrase_command.json``: ``%`` substitution (PASS_02) and running
``cluster_passphrase_command`` (PASS_01, PASS_03..PASS_07).

Every command is POSIX ``sh`` and portable: output comes from ``printf`` (never ``echo -e``),
bytes that are not UTF-8 from octal escapes, long output from ``printf`` field widths or a
``while`` loop. Passphrase characters are letters and digits so no command needs quoting
subtleties.
"""

from __future__ import annotations

from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family

PROMPT = "Enter database encryption pass phrase:"
PURPOSES = ("bootstrap", "startup", "rotation")
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def alnum(label: str, n: int) -> bytes:
    """``n`` letters and digits: byte i is ALNUM[D(label, n)[i] % 62]."""
    return bytes(_ALNUM[b % len(_ALNUM)] for b in drbg.derive(label, n))


def octal(data: bytes) -> str:
    """``data`` as a printf format of octal escapes (``\\ooo`` per byte)."""
    return "".join(f"\\{b:03o}" for b in data)


NOTES = {
    "DEV_PROMPT": "The 2020 patch's %p copy dropped the prompt's last character and cut the "
    "command right after it (DEV_PROMPT); the specified behaviour replaces %p by the whole prompt "
    "and keeps the rest of the command.",
    "KEPT_AS_IS": "A % followed by anything other than p or %, or a lone trailing %, is kept "
    "unchanged (PASS_02), so shell and printf syntax such as %s or date +%Y passes through.",
    "DOUBLE_PERCENT": "%% becomes a single %, and the result is not scanned again: %%p is the "
    "text %p, not the prompt.",
    "TRAILING_NEWLINE": "The command's output ends with a newline that is part of the passphrase "
    "(PASS_01): an implementation that trims it derives another KEK and cannot open keys the "
    "2020 patch wrote.",
    "NOT_UTF8": "The output is not valid UTF-8; the passphrase is the raw bytes. An "
    "implementation that decodes it as text fails or changes it.",
    "EMBEDDED_NUL": "The output contains a NUL byte; reading it as a C string loses the rest.",
    "STDERR_IGNORED": "The command writes to stderr; only stdout is the passphrase, and stderr "
    "is discarded, never echoed (it may carry secrets).",
    "STDIN_DEVNULL": "The command reads stdin, which must be /dev/null (PASS_01): it reads "
    "nothing and the empty output is too short. An implementation that leaves stdin attached "
    "hangs here or feeds the command data that is not the user's.",
    "LONG_OUTPUT": "The command prints far more than 1024 bytes; the whole output must be "
    "drained (PASS_11: a writer killed by SIGPIPE would count as a failing command), its length "
    "known, and only the first 1024 bytes kept at startup.",
    "EXIT_STATUS": "The command exits non-zero after printing a plausible passphrase: the "
    "output must not be used (PASS_03).",
    "KILLED": "The command is killed by a signal: a failure (PASS_03), even after output.",
    "SUBSTITUTED_BEFORE_RUN": "Substitution (PASS_02) is applied to the command before the "
    "shell runs it, so the output shows its effect.",
    "CUT_AT_STARTUP": "At startup only the first 1024 bytes are used (PASS_06).",
    "TOO_LONG_REJECTED": "Bootstrap and rotation reject output over 1024 bytes (PASS_05); the "
    "2020 patch cut it silently (DEV_TRUNCATE).",
    "PIPE_BUFFER_2020": "More output than a pipe holds (64 KiB on Linux): the 2020 patch closed "
    "the pipe after reading 1024 bytes, so the command died of SIGPIPE and the patch reported a "
    "failed command (DEV_LONG_OUTPUT). The output must be drained instead.",
    "PROMPT_OVERFLOW_2020": "Many %p: the 2020 patch copied each prompt into a fixed 1024-byte "
    "buffer without a bound check and overflowed it (DEV_COMMAND_LENGTH). The command is "
    "substituted whole.",
    "LONG_COMMAND_2020": "A configured command longer than 1023 bytes: the 2020 patch silently "
    "cut it at its buffer's end and ran the cut command (DEV_COMMAND_LENGTH). The command is run "
    "whole: only its tail prints the passphrase.",
    "INLINE_SECRET": "The passphrase is written inline in the command, which then fails. The "
    "2020 message quoted the command text, putting the passphrase into the server log "
    "(DEV_COMMAND_MESSAGE); the error message must contain neither the command nor its output "
    "(PASS_10). The harness checks the message for the command's long tokens.",
}


TRIAGE = {
    "CUT_AT_STARTUP": ("LEGACY", "refuses long startup output the 2020 patch cut to 1024 bytes"),
    "DEV_PROMPT": (
        "KNOWN_2020_DEFECT",
        "drops the prompt's last character and cuts the command after %p, as the 2020 patch did",
    ),
    "DOUBLE_PERCENT": ("BASIC", "substitutes %% wrongly or scans the result again"),
    "EMBEDDED_NUL": ("BASIC", "loses the output after its first NUL byte: another KEK"),
    "EXIT_STATUS": (
        "AUTH_BYPASS",
        "uses the output of a command that failed as the passphrase",
    ),
    "INLINE_SECRET": (
        "CONFIDENTIALITY",
        "quotes the command, and the passphrase written in it, in its error message",
    ),
    "KEPT_AS_IS": ("BASIC", "changes %-sequences other than %p and %%, breaking shell syntax"),
    "KILLED": ("AUTH_BYPASS", "uses the output of a command killed by a signal"),
    "LONG_COMMAND_2020": (
        "KNOWN_2020_DEFECT",
        "cuts a long configured command and runs the cut one, as the 2020 patch did",
    ),
    "LONG_OUTPUT": (
        "EDGE_CASE",
        "stops reading a long output early: the command dies of SIGPIPE or hangs",
    ),
    "NOT_UTF8": ("BASIC", "decodes the output as text and fails or changes the passphrase"),
    "PIPE_BUFFER_2020": (
        "KNOWN_2020_DEFECT",
        "closes the pipe after 1024 bytes and reports a good command as failed",
    ),
    "PROMPT_OVERFLOW_2020": (
        "KNOWN_2020_DEFECT",
        "overflows or cuts a fixed buffer when many %p are substituted",
    ),
    "STDERR_IGNORED": (
        "CONFIDENTIALITY",
        "takes stderr as part of the passphrase, or echoes it where it may leak",
    ),
    "STDIN_DEVNULL": (
        "BASIC",
        "leaves stdin attached: the command hangs or reads data that is not the user's",
    ),
    "SUBSTITUTED_BEFORE_RUN": ("BASIC", "runs the command without substituting %p first"),
    "TOO_LONG_REJECTED": (
        "KNOWN_2020_DEFECT",
        "silently cuts long output for a new key set, as the 2020 patch did",
    ),
    "TRAILING_NEWLINE": (
        "BASIC",
        "trims the output's newline and derives another KEK: 2020 keys do not open",
    ),
}


def build() -> Family:
    fam = Family(
        name="passphrase_command",
        header=[
            "Passphrase commands: substitute(command) applies %p -> the prompt "
            f"'{PROMPT}', %% -> %, any other %x kept (PASS_02); "
            "run_passphrase_command(command, purpose) substitutes, runs the command with "
            "/bin/sh -c, stdin /dev/null, stderr discarded, and returns its raw stdout after the "
            "purpose's length rules (PASS_01, PASS_03..PASS_07).",
            drbg.DESCRIPTION,
            "Labels: letter-and-digit passphrases 'passphrase_command/alnum-N' map each byte b "
            "of D(label, N) to 'A-Za-z0-9'[b % 62]; non-UTF-8 output is "
            "D('passphrase_command/high-64', 64) with every byte OR 0x80.",
            "Commands are POSIX sh; run them from any working directory. They take well under a "
            "second each.",
        ],
        notes=NOTES,
        triage=TRIAGE,
    )
    _substitute(fam)
    _run(fam)
    return fam


def _substitute(fam: Family) -> None:
    g = fam.group("substitute", "%p, %% and every other % sequence")
    cases: list[tuple[str, str, str, list[str]]] = [
        ("cat /etc/pgkms/passphrase", "cat /etc/pgkms/passphrase", "no % at all", []),
        ("", "", "the empty command", []),
        ("%p", PROMPT, "only %p", []),
        ("get-passphrase --prompt '%p'", f"get-passphrase --prompt '{PROMPT}'", "%p inside", []),
        (
            "ask '%p' --then-more-arguments",
            f"ask '{PROMPT}' --then-more-arguments",
            "text after %p is kept",
            ["DEV_PROMPT"],
        ),
        ("%p%p", PROMPT + PROMPT, "%p twice in a row", []),
        ("%%", "%", "%% alone", ["DOUBLE_PERCENT"]),
        ("echo 100%%", "echo 100%", "%% at the end", ["DOUBLE_PERCENT"]),
        ("%%p", "%p", "%%p is an escaped % followed by p", ["DOUBLE_PERCENT"]),
        ("%%%p", "%" + PROMPT, "%% then %p", ["DOUBLE_PERCENT"]),
        ("%%%%", "%%", "two %% in a row", ["DOUBLE_PERCENT"]),
        ("%%%", "%%", "%% then a trailing %", ["DOUBLE_PERCENT", "KEPT_AS_IS"]),
        ("echo 100%", "echo 100%", "a lone trailing %", ["KEPT_AS_IS"]),
        ("%", "%", "a lone %", ["KEPT_AS_IS"]),
        ("printf %s secret", "printf %s secret", "%s kept", ["KEPT_AS_IS"]),
        ("date +%Y-%m-%d", "date +%Y-%m-%d", "%Y, %m, %d kept", ["KEPT_AS_IS"]),
        ("%P %x %1 %-", "%P %x %1 %-", "%P (upper case) and others kept", ["KEPT_AS_IS"]),
        ("a%\nb", "a%\nb", "% before a newline kept", ["KEPT_AS_IS"]),
        ("pass-%p-é-%%-ü", f"pass-{PROMPT}-é-%-ü", "non-ASCII text around the sequences", []),
        ("%p" * 40, PROMPT * 40, "40 %p: 1520 bytes after substitution", ["PROMPT_OVERFLOW_2020"]),
    ]
    for command, result, what, flags in cases:
        g.add(
            "substitute",
            {"command": command},
            comment=what,
            requirements=["PASS_02"],
            flags=flags,
            expected={"command": result},
        )


def _run(fam: Family) -> None:
    x64 = alnum("passphrase_command/alnum-64", 64).decode()
    x63 = x64[:63]
    g = fam.group("run_output", "the passphrase is exactly what the command prints")
    high = bytes(b | 0x80 for b in drbg.derive("passphrase_command/high-64", 64))
    exact: list[tuple[str, bytes, str, list[str], list[str]]] = [
        (f"printf '%s' {x64}", x64.encode(), "exactly 64 bytes, no newline", [], ["PASS_01"]),
        (
            f"printf '%s\\n' {x64}",
            x64.encode() + b"\n",
            "64 bytes and a newline: 65 bytes",
            ["TRAILING_NEWLINE"],
            ["PASS_01"],
        ),
        (
            f"echo {x64}",
            x64.encode() + b"\n",
            "echo adds a newline",
            ["TRAILING_NEWLINE"],
            ["PASS_01"],
        ),
        (
            f"printf '%s \\r\\n' {x64}",
            x64.encode() + b" \r\n",
            "trailing space, CR and LF all kept",
            ["TRAILING_NEWLINE"],
            ["PASS_01"],
        ),
        (
            f"printf '{octal(high)}'",
            high,
            "64 bytes >= 0x80 via octal escapes",
            ["NOT_UTF8"],
            ["PASS_01"],
        ),
        (
            f"printf '%s\\000%s' {x64[:32]} {x64[32:]}",
            x64[:32].encode() + b"\x00" + x64[32:].encode(),
            "a NUL byte in the middle (65 bytes)",
            ["EMBEDDED_NUL"],
            ["PASS_01"],
        ),
        (
            f"printf 'diagnostics' >&2; printf '%s' {x64}",
            x64.encode(),
            "stderr output is not part of the passphrase",
            ["STDERR_IGNORED"],
            ["PASS_01"],
        ),
        (
            f"printf '%%s%%s' '%p' {x64[:26]}",
            (PROMPT + x64[:26]).encode(),
            "%p and %% are substituted before the shell runs the command",
            ["SUBSTITUTED_BEFORE_RUN", "DOUBLE_PERCENT"],
            ["PASS_01", "PASS_02"],
        ),
    ]
    # A 1100-byte no-op first, so that only a command run whole reaches the printf.
    long_command = ": " + "x" * 1100 + f"; printf '%s' {x64}"
    exact.append(
        (
            long_command,
            x64.encode(),
            f"a {len(long_command)}-byte command whose tail prints the passphrase",
            ["LONG_COMMAND_2020"],
            ["PASS_01", "PASS_02"],
        )
    )
    for command, output, what, flags, reqs in exact:
        g.add(
            "run_passphrase_command",
            {"command": command, "purpose": "startup"},
            comment=what,
            requirements=reqs,
            flags=flags,
            expected={"passphrase": output.hex()},
        )
    g = fam.group("run_lengths", "output length limits, per purpose")
    zeros_1024 = b"0" * 1024
    long_loop = "i=0; while [ $i -lt 1000 ]; do printf '%0100d' 0; i=$((i+1)); done"
    for purpose in PURPOSES:
        short_reqs = ["PASS_07"] if purpose == "startup" else ["PASS_04"]
        for command, what, flags in (
            (f"printf '%s' {x63}", "63 bytes", []),
            ("true", "no output at all", []),
            ("cat", "cat reads stdin, which is /dev/null: no output", ["STDIN_DEVNULL"]),
        ):
            g.add(
                "run_passphrase_command",
                {"command": command, "purpose": purpose},
                comment=f"{purpose}: {what} is too short",
                requirements=[*short_reqs, "PASS_01"],
                flags=flags,
                error="passphrase_too_short",
            )
        g.add(
            "run_passphrase_command",
            {"command": "printf '%01024d' 0", "purpose": purpose},
            comment=f"{purpose}: 1024 bytes ('0' * 1024) is accepted",
            requirements=["PASS_01", "PASS_06" if purpose == "startup" else "PASS_05"],
            expected={"passphrase": zeros_1024.hex()},
        )
        for command, what, flags, drained in (
            ("printf '%01025d' 0", "1025 bytes", [], []),
            (
                long_loop,
                "100000 bytes from a loop",
                ["LONG_OUTPUT", "PIPE_BUFFER_2020"],
                ["PASS_11"],  # more than a pipe holds: only a drained command exits normally
            ),
        ):
            params = {"command": command, "purpose": purpose}
            if purpose == "startup":
                g.add(
                    "run_passphrase_command",
                    params,
                    comment=f"startup: {what}, cut to the first 1024",
                    requirements=[*drained, "PASS_06"],
                    flags=[*flags, "CUT_AT_STARTUP"],
                    expected={"passphrase": zeros_1024.hex()},
                )
            else:
                g.add(
                    "run_passphrase_command",
                    params,
                    comment=f"{purpose}: {what} is too long",
                    requirements=["PASS_05", *drained],
                    flags=[*flags, "TOO_LONG_REJECTED"],
                    error="passphrase_too_long",
                )
    g = fam.group("run_failure", "commands that fail, exit non-zero or are killed")
    for command, what, flags in (
        ("exit 3", "exit status 3", ["EXIT_STATUS"]),
        (f"printf '%s' {x64}; exit 3", "a good passphrase, then exit 3", ["EXIT_STATUS"]),
        ("false", "false: exit status 1", ["EXIT_STATUS"]),
        ("/nonexistent/pgkms-no-such-command", "a command that cannot start (127)", []),
        ("kill -KILL $$", "the shell kills itself with SIGKILL", ["KILLED"]),
        (
            f"printf '%s' {x64}; kill -KILL $$",
            "a good passphrase, then SIGKILL",
            ["KILLED"],
        ),
    ):
        g.add(
            "run_passphrase_command",
            {"command": command, "purpose": "startup"},
            comment=what,
            requirements=["PASS_03"],
            flags=flags,
            error="passphrase_command_failed",
        )
    g = fam.group("run_many_prompts", "a command with many %p is substituted and run whole")
    g.add(
        "run_passphrase_command",
        {
            "command": "printf '%s' '" + "%p" * 40 + "'",
            "purpose": "startup",
        },
        comment="40 %p substituted inside the command: 1520 bytes printed, cut to 1024",
        requirements=["PASS_02", "PASS_06"],
        flags=["PROMPT_OVERFLOW_2020", "CUT_AT_STARTUP"],
        expected={"passphrase": (PROMPT * 40).encode()[:1024].hex()},
    )
    inline = alnum("passphrase_command/inline-64", 64).decode()
    g = fam.group("run_message", "a failing command's message never quotes the command")
    for command, what in (
        (f"printf '%s' {inline}; exit 3", "an inline passphrase, then exit 3"),
        (f"printf '%s' {inline} >&2; false", "an inline passphrase on stderr, then false"),
        (f"printf '%s' {inline}; kill -KILL $$", "an inline passphrase, then SIGKILL"),
    ):
        g.add(
            "run_passphrase_command",
            {"command": command, "purpose": "startup"},
            comment=what,
            requirements=["PASS_10"],
            flags=["INLINE_SECRET"],
            error="passphrase_command_failed",
        )
