# ferry's scheduler preload (--preload): tells ferry, one JSON object a line on this process's
# stdout, where the scheduler listens and when each worker joins or leaves. ferry counts workers
# from these events instead of polling a client, and names the node of a worker that is lost.
import json
import sys
import threading

from distributed.diagnostics.plugin import SchedulerPlugin


def _say(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class FerryEvents(SchedulerPlugin):
    name = "ferry-events"

    def __init__(self):
        self.names = {}  # address -> name: remove_worker may come once the state is gone

    def add_worker(self, scheduler=None, worker=None, **kwargs):
        ws = scheduler.workers.get(worker)
        self.names[worker] = str(ws.name) if ws else ""
        _say(
            event="add",
            address=worker,
            name=str(ws.name) if ws else "",
            host=ws.host if ws else "",
            nthreads=ws.nthreads if ws else 0,
            memory_limit=ws.memory_limit if ws else 0,
        )

    def remove_worker(self, scheduler=None, worker=None, *args, **kwargs):
        _say(event="remove", address=worker, name=self.names.pop(worker, ""))


def _close_on_stop(scheduler):
    # "stop" on stdin, or stdin closing (the coordinator is gone), closes the scheduler, which
    # tells every worker to close: the cluster ends cleanly, without a signal per node.
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    scheduler.loop.add_callback(scheduler.close)


def dask_setup(scheduler):
    # Preloads start once the scheduler listens, its dashboard included.
    server = getattr(scheduler, "http_server", None)
    dashboard = server.port if server is not None and "dashboard" in scheduler.services else 0
    if not dashboard:
        dashboard = scheduler.services.get("dashboard", None)
        dashboard = getattr(dashboard, "port", 0) if dashboard is not None else 0
    scheduler.add_plugin(FerryEvents())
    threading.Thread(target=_close_on_stop, args=(scheduler,), daemon=True).start()
    import distributed

    _say(
        event="scheduler",
        address=scheduler.address,
        dashboard=dashboard,
        distributed=distributed.__version__,
    )
