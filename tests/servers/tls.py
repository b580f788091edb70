"""A self-signed certificate for loopback test servers (IMAP, SMTP), made once with openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Valid for both names clients use; marked as its own CA so that strict verifiers
# (Python 3.13's VERIFY_X509_STRICT) accept it as cafile.
_EXTENSIONS = (
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,digitalSignature,keyCertSign",
    "extendedKeyUsage=serverAuth",
)


class CertificateError(RuntimeError):
    """openssl is missing or could not make the certificate."""


def self_signed_certificate(cert: Path, key: Path) -> None:
    """Write cert.pem and key.pem unless both exist, so a client's cafile stays valid across restarts."""
    if cert.exists() and key.exists():
        return
    openssl = shutil.which("openssl") or shutil.which("openssl", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if openssl is None:
        raise CertificateError("`openssl` not found; run scripts/services/install.sh as root")
    cert.parent.mkdir(parents=True, exist_ok=True)
    command = [openssl, "req", "-x509", "-nodes", "-days", "3650", "-subj", "/CN=localhost"]
    command += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", str(key), "-out", str(cert)]
    for extension in _EXTENSIONS:
        command += ["-addext", extension]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CertificateError(f"could not generate the self-signed certificate: {done.stderr.strip()}")
    key.chmod(0o600)
