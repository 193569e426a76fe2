# ferry dask, before anything starts: what this env's Python has (distributed, bokeh, JupyterLab)
# and, unless argv[1] is "insecure", a fresh self-signed key and certificate for this cluster
# alone. Prints one JSON object; ferry writes the key files itself (0600, in a 0700 directory).
import datetime
import importlib.metadata
import importlib.util
import json
import sys


def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


out = {
    "python": sys.executable,
    "python_version": "%d.%d.%d" % sys.version_info[:3],
    "distributed": version("distributed") if importlib.util.find_spec("distributed") else None,
    "bokeh": importlib.util.find_spec("bokeh") is not None,
    "jupyterlab": importlib.util.find_spec("jupyterlab") is not None,
    "notebook": importlib.util.find_spec("notebook") is not None,
}
if out["distributed"] and sys.argv[1:2] != ["insecure"]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as e:
        out["tls_error"] = "cannot make the cluster's TLS certificate: %s" % e
    else:
        # One EC key and a self-signed certificate that is its own CA: distributed verifies
        # both ends against it (CERT_REQUIRED), so only holders of this key can connect.
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sys.argv[1])])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        out["key"] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        out["cert"] = cert.public_bytes(serialization.Encoding.PEM).decode()
print(json.dumps(out))
