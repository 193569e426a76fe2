# ferry ray's watcher, on the head once Ray runs there: asks the GCS (argv[1], host:port, with
# the token in the environment) for its node table every tenth of a second, and prints, one JSON
# object a line, the nodes whenever they change. ferry counts the nodes from these lines (no
# driver is started for it) and names a node that dies. Ends when stdin closes.
# With "once": prints the table once and ends (ferry ray status).
import json
import sys
import threading
import time

from ray._private import state
from ray._raylet import GcsClientOptions


def table(gcs):
    nodes = []
    for n in gcs.node_table():
        resources = n.get("Resources", {}) or {}
        nodes.append(
            {
                "address": n.get("NodeManagerAddress", ""),
                "host": n.get("NodeManagerHostname", ""),
                "alive": bool(n.get("Alive", False)),
                "cpus": resources.get("CPU", 0),
                "gpus": resources.get("GPU", 0),
            }
        )
    return sorted(nodes, key=lambda n: (n["address"], not n["alive"]))


def main():
    gcs = state.GlobalState()
    gcs._initialize_global_state(
        GcsClientOptions.create(sys.argv[1], None, allow_cluster_id_nil=True, fetch_cluster_id_if_nil=False)
    )
    if sys.argv[2:3] == ["once"]:
        print(json.dumps({"event": "nodes", "nodes": table(gcs)}))
        return
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    last = None
    while not done.is_set():
        nodes = table(gcs)
        if nodes != last:
            print(json.dumps({"event": "nodes", "nodes": nodes}), flush=True)
            last = nodes
        time.sleep(0.1)


main()
