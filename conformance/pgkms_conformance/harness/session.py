"""One IUT for the length of a run: start it, restart it after a protocol failure, give up cleanly.

A stage calls ``session.call``; a crash, hang or garbage answer surfaces as the client's
``AdapterFailure``. The stage records it as a failed case (with the IUT's stderr tail) and calls
``recover_from`` which restarts the IUT, so one bad request does not hide every later result. After
``max_failures`` protocol failures the run is aborted: a hung IUT costs at most that many
timeouts, and every later call raises ``RunAborted`` at once, without touching the IUT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgkms_conformance.harness.model import Aborted
from pgkms_conformance.harness.redact import Redactor
from pgkms_conformance.protocol.client import AdapterClient, AdapterFailure, Hello, Response


class RunAborted(Exception):
    """Raised by every call once the session has given up on the IUT."""


class IutSession:
    def __init__(
        self,
        command: Sequence[str],
        timeout: float,
        redactor: Redactor,
        max_failures: int = 3,
    ) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.redactor = redactor
        self.max_failures = max_failures
        self.failures = 0
        self.aborted: Aborted | None = None
        self.hello: Hello | None = None
        self._client: AdapterClient | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Hello:
        """Start the IUT and say hello; an AdapterFailure here aborts the run."""
        try:
            self._client = AdapterClient(self.command, timeout=self.timeout)
            self.hello = self._client.hello()
        except AdapterFailure as exc:
            self._give_up(exc)
            raise RunAborted(exc.message) from None
        return self.hello

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> AdapterClient:
        """The running client (for the vector runner, which talks to it directly)."""
        if self.aborted is not None or self._client is None:
            raise RunAborted(self.aborted.message if self.aborted else "the IUT is not running")
        return self._client

    @property
    def capabilities(self) -> frozenset[str]:
        return self.hello.capabilities if self.hello else frozenset()

    def supports(self, *needs: str) -> bool:
        return all(n in self.capabilities for n in needs)

    # -- requests -------------------------------------------------------------------------------
    def call(self, op: str, **params: Any) -> Response:
        """One request; AdapterFailure propagates (the caller records it, then ``recover_from``)."""
        return self.client.call(op, **params)

    def send_raw(self, line: str) -> dict[str, Any]:
        return self.client.send_raw(line)

    def recover_from(self, failure: AdapterFailure) -> None:
        """Count a protocol failure; restart the IUT, or give up after too many."""
        self.failures += 1
        self.close()
        if self.failures >= self.max_failures:
            self._give_up(failure)
            return
        try:
            self._client = AdapterClient(self.command, timeout=self.timeout)
            self._client.hello()
        except AdapterFailure as exc:
            self._give_up(exc)

    def _give_up(self, failure: AdapterFailure) -> None:
        self.close()
        self.aborted = Aborted(
            kind=failure.kind,
            message=self.redactor.scrub(failure.message),
            stderr_tail=self.redactor.scrub_all(failure.stderr_tail),
        )
