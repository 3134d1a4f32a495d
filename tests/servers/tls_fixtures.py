"""Session fixtures for the network probes: nginx over TLS with certificates made in the test,
a listener that accepts connections but never says anything, and one that never even
completes a connection.

The certificates come from a test CA generated here with ``cryptography`` (never from files in
the repository, so none can expire under the suite): ``valid`` (90 days, localhost and
127.0.0.1), ``expiring`` (5 days), ``expired`` (yesterday), ``wrong_name``
(wrong.example.net) and ``self_signed``. Each is served by its own nginx ``server`` block on
its own port with the standard test routes; clients trust ``ca_file``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers.fixtures import missing_binary
from tests.servers.nginx import NginxServer, routes, running_nginx
from tests.servers.ports import LOOPBACK, free_port
from tests.servers.process import MissingBinaryError

__all__ = ["full_listener", "silent_listener", "tls_servers"]

LOCAL_NAMES = ("localhost", LOOPBACK)
WRONG_NAME = "wrong.example.net"
# name -> (days from now to notAfter, names, signed by the test CA)
CERTIFICATES: dict[str, tuple[float, tuple[str, ...], bool]] = {
    "valid": (90, LOCAL_NAMES, True),
    "expiring": (5, LOCAL_NAMES, True),
    "expired": (-1, LOCAL_NAMES, True),
    "wrong_name": (90, (WRONG_NAME,), True),
    "self_signed": (90, LOCAL_NAMES, False),
}


@dataclass(frozen=True)
class TlsServers:
    """One nginx with a TLS port per certificate; `ca_file` is the test CA to trust."""

    host: str
    ca_file: Path
    ports: dict[str, int]
    not_after: dict[str, datetime]
    nginx: NginxServer

    def url(self, certificate: str, path: str = "/health", host: str = LOOPBACK) -> str:
        return f"https://{host}:{self.ports[certificate]}{path}"


@dataclass(frozen=True)
class Listener:
    """A port whose connections are accepted by the kernel and then never answered."""

    host: str
    port: int


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_pem(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_ca(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name("tocsin test CA")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def make_leaf(
    names: tuple[str, ...],
    not_after: datetime,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for `names`, signed by `issuer` or by itself when None."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(names[0])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(not_after, datetime.now(UTC)) - timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_alt_names(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def write_certificates(directory: Path) -> tuple[Path, dict[str, datetime]]:
    """The CA file plus `<name>.crt`/`<name>.key` for every entry of CERTIFICATES."""
    now = datetime.now(UTC).replace(microsecond=0)
    ca = make_ca(now)
    ca_file = directory / "ca.crt"
    _write_pem(ca_file, ca[0])
    not_after: dict[str, datetime] = {}
    for name, (days, names, by_ca) in CERTIFICATES.items():
        not_after[name] = now + timedelta(days=days)
        certificate, key = make_leaf(names, not_after[name], ca if by_ca else None)
        _write_pem(directory / f"{name}.crt", certificate)
        _write_key(directory / f"{name}.key", key)
    return ca_file, not_after


def _tls_server_block(port: int, directory: Path, name: str, root: Path, upstream: int) -> str:
    return f"""server {{
        listen {LOOPBACK}:{port} ssl;
        server_name localhost;
        root {root};
        ssl_certificate {directory / f"{name}.crt"};
        ssl_certificate_key {directory / f"{name}.key"};
{routes(upstream)}
    }}"""


@pytest.fixture(scope="session")
def tls_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServers]:
    """nginx serving the test routes over TLS, one port per generated certificate.

    Its plain-HTTP port also has ``/to-https``, a 301 to ``/health`` on the valid TLS port.
    """
    directory = tmp_path_factory.mktemp("tls")
    ca_file, not_after = write_certificates(directory)
    ports = {name: free_port() for name in CERTIFICATES}
    base_dir = tmp_path_factory.mktemp("nginx-tls")
    to_https = f"location = /to-https {{ return 301 https://{LOOPBACK}:{ports['valid']}/health; }}"

    def servers(upstream: int) -> list[str]:
        return [
            _tls_server_block(port, directory, name, base_dir / "www", upstream)
            for name, port in ports.items()
        ]

    try:
        with running_nginx(base_dir, [to_https], servers) as nginx:
            yield TlsServers(LOOPBACK, ca_file, ports, not_after, nginx)
    except MissingBinaryError as error:
        missing_binary(error)


@pytest.fixture(scope="session")
def silent_listener() -> Iterator[Listener]:
    """A listening socket that is never accepted from: connects succeed, nothing arrives."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(128)
        yield Listener(LOOPBACK, sock.getsockname()[1])


@pytest.fixture(scope="session")
def full_listener() -> Iterator[Listener]:
    """A listener whose accept queue is full: the kernel drops new SYNs, so connects hang."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        fillers = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex((LOOPBACK, port))
            yield Listener(LOOPBACK, port)
        finally:
            for filler in fillers:
                filler.close()
