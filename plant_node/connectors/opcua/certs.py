"""Self-signed OPC UA application certificates (PEM key, DER certificate) for a secure channel."""

from __future__ import annotations

from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID


def make_certificate(
    directory: Path, name: str, application_uri: str, *, server: bool = False, days: int = 365
) -> tuple[Path, Path]:
    """Write ``<name>.der`` and ``<name>.pem`` (certificate, private key); return both paths.

    The certificate names ``application_uri`` and ``localhost``/``127.0.0.1`` in its subject
    alternative names, as OPC UA requires of the application it identifies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = cert_gen.generate_private_key()
    alt_names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(application_uri),
        x509.DNSName("localhost"),
    ]
    use = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {"organizationName": "Millwright"}, alt_names, extended=use, days=days
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(encoding=Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path
