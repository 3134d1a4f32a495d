"""What a person needs to know about a server certificate, read from its DER bytes.

Python's `ssl` only describes a certificate it has verified; the tls probe must also read
one that failed verification (expired, wrong name, unknown issuer) to report its dates and
names, so the bytes are parsed with `cryptography`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    names: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        """Days until notAfter (negative once expired), to the hundredth."""
        return round((self.not_after - now).total_seconds() / 86400, 2)

    def evidence(self) -> tuple[tuple[str, str], ...]:
        return (
            ("subject", self.subject),
            ("issuer", self.issuer),
            ("names", ", ".join(self.names) or "(none)"),
            ("not after", self.not_after.strftime("%Y-%m-%d %H:%M:%S UTC")),
        )


def read_certificate(der: bytes) -> CertificateFacts:
    """Raises ValueError when the bytes are not a certificate."""
    certificate = x509.load_der_x509_certificate(der)
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string() or "(empty)",
        issuer=certificate.issuer.rfc4514_string() or "(empty)",
        names=_names(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def _names(certificate: x509.Certificate) -> tuple[str, ...]:
    """Subject alternative names (DNS and IP), or the common name when there are none."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return tuple(str(attribute.value) for attribute in common)
    names = extension.value
    dns = names.get_values_for_type(x509.DNSName)
    ips = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
    return (*dns, *ips)
