"""The box's PKI: one CA per box and the server certificates it issues (NTS-KE for chrony today;
later the console's TLS, VPN servers …), with the ``cryptography`` package (no openssl shell-outs).

Private keys are written 0600 from the first byte (never world-readable, not even briefly), live
in the agent's state directory (``STATE/ca``, 0700), and never reach git, logs or status: the
functions here return paths and public facts only.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825


class PkiError(Exception):
    pass


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write; the temporary file has the final mode from creation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class BoxCA:
    """The CA in ``ca_dir`` (``ca.key`` 0600, ``ca.crt``), created on first use."""

    def __init__(self, ca_dir: str | os.PathLike):
        self.dir = Path(ca_dir)
        self.key_path, self.crt_path = self.dir / "ca.key", self.dir / "ca.crt"

    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)

    def ensure(self, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        self._ensure_dir()
        if self.key_path.exists() and self.crt_path.exists():
            try:
                key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
                crt = x509.load_pem_x509_certificate(self.crt_path.read_bytes())
            except (OSError, ValueError) as e:
                raise PkiError(f"the box CA in {self.dir} cannot be read: {e}") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise PkiError(f"the box CA key in {self.dir} is not an EC key")
            return key, crt
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"talgate CA {cn}"[:64])])
        now = _now()
        crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=True, crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .sign(key, hashes.SHA256()))
        _write(self.key_path, _key_bytes(key), 0o600)
        _write(self.crt_path, crt.public_bytes(serialization.Encoding.PEM), 0o644)
        return key, crt

    def issue_server(self, key_path: str | os.PathLike, crt_path: str | os.PathLike, names: list[str],
                     cn: str) -> x509.Certificate:
        """A server key (0600) + certificate for names (DNS names and IP addresses as SANs)."""
        if not names:
            raise PkiError("a server certificate needs at least one name")
        ca_key, ca_crt = self.ensure(cn)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        crt = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
               .issuer_name(ca_crt.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
               .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
        _write(Path(key_path), _key_bytes(key), 0o600)
        _write(Path(crt_path), crt.public_bytes(serialization.Encoding.PEM), 0o644)
        return crt

    def status(self) -> dict:
        """Public facts only (never the key)."""
        try:
            crt = x509.load_pem_x509_certificate(self.crt_path.read_bytes())
        except (OSError, ValueError):
            return {"present": False}
        return {"present": True, "subject": crt.subject.rfc4514_string(),
                "not_after": crt.not_valid_after_utc.isoformat(),
                "sha256": crt.fingerprint(hashes.SHA256()).hex()}
