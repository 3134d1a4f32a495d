"""TLS for the network probes: a channel over memory buffers, shared client contexts, and
what a failed handshake means for the person reading the card.

`ssl.MemoryBIO` keeps TLS on the same plain socket calls as `probes.net.Channel`, so the
handshake is one step that can be timed on its own, and the certificate can be read even
when it was not verified.
"""

from __future__ import annotations

import functools
import socket
import ssl
from pathlib import Path

from probes.net import RECV_SIZE, Channel, ProbeProblem, why
from probes.result import Status


class TlsChannel(Channel):
    """TLS through memory buffers, so that the handshake is one timed, awaitable step."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(sock)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        hostname = server_name or None
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)

    async def handshake(self) -> None:
        """Raises ssl.SSLCertVerificationError or another ssl.SSLError when it fails."""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()

    def peer_certificate(self) -> bytes | None:
        """The server's certificate in DER, also when it was not verified."""
        return self.tls.getpeercert(binary_form=True)

    async def send(self, data: bytes) -> None:
        self.tls.write(data)
        await self._flush()

    async def recv(self) -> bytes:
        while True:
            try:
                return self.tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or a plain close: both end a read-until-close body

    async def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            await self.loop.sock_sendall(self.sock, pending)

    async def _fill(self) -> None:
        data = await self.loop.sock_recv(self.sock, RECV_SIZE)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()


def tls_context(verify: bool, ca_file: Path | None, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """A client context: the system trust store, or `ca_file` when given.

    Probes with the same trust settings share one context: loading the system store costs
    about 1 MB and 25 ms of CPU, too much to repeat for each of thousands of probes. An
    unreadable or malformed trust file is our configuration, so it is an `error` (and is
    tried again on the next run, since failures are not cached).
    """
    try:
        return _shared_context(verify, str(ca_file) if ca_file else None, alpn)
    except (OSError, ssl.SSLError) as error:
        raise ProbeProblem(Status.ERROR, f"cannot load ca_file {ca_file}: {why(error)}") from None


@functools.lru_cache(maxsize=64)
def _shared_context(verify: bool, ca_file: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(cafile=ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def tls_problem(error: ssl.SSLError, server_name: str, where: str) -> ProbeProblem:
    """The target's certificate or TLS setup is wrong: always the target's fault."""
    if isinstance(error, ssl.SSLCertVerificationError):
        message = error.verify_message or why(error)
        return ProbeProblem(Status.FAIL, f"TLS certificate of {server_name} not valid: {message}")
    return ProbeProblem(Status.FAIL, f"TLS handshake with {where} failed: {tls_reason(error)}")


def tls_reason(error: ssl.SSLError) -> str:
    """`wrong version number` rather than `[SSL: WRONG_VERSION_NUMBER] wrong version ...`."""
    text = str(error)
    if error.reason and "]" in text:
        text = text.split("]", 1)[1].split("(_ssl.c", 1)[0].strip()
    return text or type(error).__name__
