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


def _attach_dashboard(scheduler):
    # The dashboard's bokeh import is a second of CPU: the scheduler starts without it (its HTTP
    # server already listens on the dashboard's loopback port) and ferry asks for it once every
    # worker has joined. The import runs off the event loop; the routes are added on it.
    def attached(module):
        try:
            module.connect(scheduler.http_application, scheduler.http_server, scheduler, prefix="")
            _say(event="dashboard", port=scheduler.http_server.port)
        except Exception as e:  # an older or newer distributed than ferry knows
            _say(event="dashboard", port=0, error="%s: %s" % (type(e).__name__, e))

    def load():
        try:
            import distributed.dashboard.scheduler as module
        except Exception as e:
            _say(event="dashboard", port=0, error="%s: %s" % (type(e).__name__, e))
            return
        scheduler.loop.add_callback(attached, module)

    threading.Thread(target=load, daemon=True).start()


def _read_commands(scheduler):
    # "dashboard" attaches the dashboard; "stop", or stdin closing (the coordinator is gone),
    # closes the scheduler, which tells every worker to close: the cluster ends cleanly, without
    # a signal per node.
    for line in sys.stdin:
        if line.strip() == "dashboard":
            _attach_dashboard(scheduler)
        elif line.strip() == "stop":
            break
    scheduler.loop.add_callback(scheduler.close)


def dask_setup(scheduler):
    # Preloads start once the scheduler listens. Its HTTP server (the dashboard's, once attached)
    # listens too.
    server = getattr(scheduler, "http_server", None)
    scheduler.add_plugin(FerryEvents())
    threading.Thread(target=_read_commands, args=(scheduler,), daemon=True).start()
    import distributed

    _say(
        event="scheduler",
        address=scheduler.address,
        http_port=server.port if server is not None else 0,
        distributed=distributed.__version__,
    )
