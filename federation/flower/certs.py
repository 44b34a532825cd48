"""TLS certificates for the SuperLink and authentication key pairs for SuperNodes.

Everything is generated locally with ``cryptography``: a private CA signs the SuperLink's
server certificate (SANs for loopback and the given host names), and each plant gets an
EC P-384 key pair in OpenSSH format, the format ``flower-supernode
--auth-supernode-private-key`` and ``flwr supernode register`` read.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALID_DAYS = 365


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA certificate and the SuperLink's server certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeyFiles:
    """Paths of one SuperNode's OpenSSH private and public authentication keys."""

    private_key: Path
    public_key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Millwright"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate_tls(out_dir: Path, *, hosts: list[str] | None = None) -> TlsFiles:
    """Create a CA and a SuperLink server certificate signed by it.

    Parameters
    ----------
    out_dir : Path
        Directory that receives ``ca.crt``, ``server.pem`` and ``server.key``.
    hosts : list[str] | None
        Host names and IP addresses the server certificate is valid for; loopback
        (``127.0.0.1``, ``::1``, ``localhost``) is always included.

    Returns
    -------
    TlsFiles
        Where the files were written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=_VALID_DAYS)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = _name("Millwright federation CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA384())
    )

    all_hosts = ["127.0.0.1", "::1", "localhost", *(hosts or [])]
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Millwright SuperLink"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(list(dict.fromkeys(all_hosts))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA384())
    )

    files = TlsFiles(
        ca_cert=out_dir / "ca.crt",
        server_cert=out_dir / "server.pem",
        server_key=out_dir / "server.key",
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        out_dir / "ca.key",
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        files.server_key,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    return files


def generate_node_keys(out_dir: Path, plant_id: str) -> NodeKeyFiles:
    """Create one SuperNode's authentication key pair (EC P-384, OpenSSH format).

    Parameters
    ----------
    out_dir : Path
        Directory that receives ``<plant_id>`` and ``<plant_id>.pub``.
    plant_id : str
        The plant the SuperNode serves; names the files.

    Returns
    -------
    NodeKeyFiles
        Where the key pair was written.
    """
    key = ec.generate_private_key(ec.SECP384R1())
    files = NodeKeyFiles(private_key=out_dir / plant_id, public_key=out_dir / f"{plant_id}.pub")
    _write_private(
        files.private_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    files.public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + f" millwright-{plant_id}\n".encode()
    )
    return files


@dataclass(frozen=True)
class IssuedCertificate:
    """Paths of a certificate issued by the local CA and its private key."""

    cert: Path
    key: Path


def issue_certificate(
    ca_dir: Path,
    out_dir: Path,
    name: str,
    *,
    hosts: list[str] | None = None,
    client: bool = False,
) -> IssuedCertificate:
    """Issue a server (or client) certificate from the CA made by :func:`generate_tls`.

    The hub's HTTPS certificate comes from the same CA as the SuperLink's, so one pinned CA
    file verifies every hop of a deployment (hub API, plant nodes, Control API, Fleet API).

    Parameters
    ----------
    ca_dir : Path
        Directory holding ``ca.crt`` and ``ca.key`` (as written by :func:`generate_tls`).
    out_dir : Path
        Directory that receives ``<name>.pem`` and ``<name>.key``.
    name : str
        Common name and file stem (e.g. ``hub`` or ``node-fd001``).
    hosts : list[str] | None
        Server names and addresses (loopback is always included); ignored for ``client``.
    client : bool
        Issue a TLS client certificate (mTLS) instead of a server certificate.

    Returns
    -------
    IssuedCertificate
        Where the certificate and key were written.
    """
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP384R1())
    usage = (
        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        if client
        else (x509.oid.ExtendedKeyUsageOID.SERVER_AUTH)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if not client:
        all_hosts = ["127.0.0.1", "::1", "localhost", *(hosts or [])]
        builder = builder.add_extension(_san(list(dict.fromkeys(all_hosts))), critical=False)
    cert = builder.sign(ca_key, hashes.SHA384())
    files = IssuedCertificate(cert=out_dir / f"{name}.pem", key=out_dir / f"{name}.key")
    out_dir.mkdir(parents=True, exist_ok=True)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    return files
