"""The demo over https (`liveblog serve --demo --https`), so that fediverse software on the same
machine can look its sessions up and follow them (docs/federation.md, "Try it with the demo"):
fediverse servers find accounts by WebFinger over https only, and check our signatures against
keys fetched from https URLs. A certificate authority is made for the run (trustme: the same
library the interop test uses), its certificate written beside the database for clients to
trust; nothing is installed in the system's trust store, and no check is turned off anywhere.
Not for production: there, a reverse proxy with a real certificate does https (deployment.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liveblog.settings import Settings

CA_FILE = "liveblog-demo-ca.pem"  # what a client trusts (NODE_EXTRA_CA_CERTS, curl --cacert)
CERT_FILE = "liveblog-demo-cert.pem"
KEY_FILE = "liveblog-demo-key.pem"


@dataclass(frozen=True)
class LocalHttps:
    ca_file: Path
    cert_file: Path
    key_file: Path


def local_https(settings: Settings, folder: Path) -> tuple[Settings, LocalHttps]:
    """A new CA and a certificate for the loopback names, written to `folder`; the settings
    with `server.public_url` at the https address (unless set) and fetches from loopback allowed
    (the fediverse software being tried runs on this machine)."""
    import trustme  # only here: serving without --https never needs it

    ca = trustme.CA(organization_name="Liveblog demo (made for one run)")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    folder.mkdir(parents=True, exist_ok=True)
    files = LocalHttps(folder / CA_FILE, folder / CERT_FILE, folder / KEY_FILE)
    ca.cert_pem.write_to_path(str(files.ca_file))
    cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
    files.key_file.touch(mode=0o600)
    files.key_file.chmod(0o600)  # the private key: its owner's only, before it is written
    cert.private_key_pem.write_to_path(str(files.key_file))
    host = settings.server.host if settings.server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    public_url = settings.server.public_url or f"https://{host}:{settings.server.port}"
    changed = settings.replace(
        server={"public_url": public_url},
        federation={"allow_private_addresses": True},
    )
    return changed, files
