# ferry ray, before anything starts: which Ray this env's Python has, and whether its dashboard's
# dependencies (ray[default]) and Ray Client's (ray[client]: grpc) are there. Prints one JSON object; nothing is imported from Ray
# (that alone takes a second).
import importlib.metadata
import importlib.util
import json
import sys


def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


print(
    json.dumps(
        {
            "python": sys.executable,
            "python_version": "%d.%d.%d" % sys.version_info[:3],
            "ray": version("ray") if importlib.util.find_spec("ray") else None,
            "dashboard": all(importlib.util.find_spec(m) for m in ("aiohttp", "grpc", "opencensus")),
            "client": importlib.util.find_spec("grpc") is not None,
        }
    )
)
