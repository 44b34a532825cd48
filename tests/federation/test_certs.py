"""Generated TLS material verifies, and SuperNode keys are in the format Flower reads."""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from federation.flower.certs import generate_node_keys, generate_tls


def test_server_certificate_is_signed_by_the_ca_for_loopback(tmp_path: Path) -> None:
    files = generate_tls(tmp_path, hosts=["hub.plant.local"])

    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())

    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "hub.plant.local" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert oct(files.server_key.stat().st_mode & 0o777) == "0o600"


def test_node_keys_are_openssh_p384(tmp_path: Path) -> None:
    keys = generate_node_keys(tmp_path, "plant-a")

    private = load_ssh_private_key(keys.private_key.read_bytes(), None)
    public = load_ssh_public_key(keys.public_key.read_bytes())

    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp384r1"
    assert private.public_key().public_numbers() == public.public_numbers()
