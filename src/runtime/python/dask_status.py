# ferry dask status: asks the running cluster (the address and TLS settings come from Dask's
# environment-variable configuration, as a client script's do) for its workers and their tasks.
# Prints one JSON object.
import json

from distributed import Client

with Client(timeout=20) as client:
    try:
        info = client.scheduler_info(n_workers=-1)  # newer versions list 5 workers unless told
    except TypeError:
        info = client.scheduler_info()
    processing = client.processing()
    held = client.has_what()
    workers = []
    for address, w in info.get("workers", {}).items():
        metrics = w.get("metrics", {})
        workers.append(
            {
                "address": address,
                "name": str(w.get("name", "")),
                "host": w.get("host", ""),
                "nthreads": w.get("nthreads", 0),
                "memory_limit": w.get("memory_limit", 0),
                "memory": metrics.get("memory", 0),
                "processing": len(processing.get(address, ())),
                "in_memory": len(held.get(address, ())),
            }
        )
    print(json.dumps({"address": info.get("address", ""), "workers": workers}))
