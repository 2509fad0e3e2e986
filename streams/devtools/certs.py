"""Certificates and credentials for a local secured broker, made with ``openssl``.

A throw-away CA signs a broker certificate (for ``127.0.0.1`` only, so that
``localhost`` is a wrong host name to test with) and a
client certificate (mutual TLS); a second, unrelated CA exists to test what an untrusted
certificate does. The broker's key and chain go into a PKCS12 keystore; its truststore
is the CA as PEM. The SCRAM/PLAIN password is random, kept in ``password`` (mode 600).
Nothing here is meant for production: keys are unencrypted and live 30 days.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streams.devtools.jars import BrokerError

USER = "fraudmon"
"""The SASL user a secured local broker knows."""


@dataclass(frozen=True)
class Credentials:
    """Files and secrets of one secured broker's work directory."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def other_ca(self) -> Path:
        """A CA that signed nothing the broker has: its certificate is untrusted with it."""
        return self.folder / "other-ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"

    @property
    def password(self) -> str:
        """The SASL password of :data:`USER`, also the keystore's."""
        return (self.folder / "password").read_text().strip()


def ensure_credentials(folder: Path) -> Credentials:
    """Make the CA, certificates, keystore and password in ``folder`` unless they exist."""
    made = Credentials(folder)
    if made.keystore.is_file() and (folder / "password").is_file():
        return made
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerError("openssl not found (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    password = folder / "password"
    password.touch(mode=0o600)
    password.write_text(secrets.token_urlsafe(24) + "\n")

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=folder, capture_output=True,  # noqa: S603
                              text=True, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise BrokerError(f"openssl {args[0]} failed: {lines[0]}", done.stderr)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
            "-out", f"{ca}.pem", "-days", "30", "-subj", f"/CN=fraudmon local {ca}")
    (folder / "broker.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject in (("broker", "/CN=127.0.0.1"), ("client", f"/CN={USER}")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject)
        extra = ["-extfile", "broker.ext"] if name == "broker" else []
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", *extra)
    run("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
        "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
        "-passout", f"pass:{made.password}")
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return made
