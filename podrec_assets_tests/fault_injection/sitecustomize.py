"""Fault injection for the crash tests, kept out of the product's code.

Python imports `sitecustomize` at start-up from the first folder on sys.path that has one. Tests put this folder on
PYTHONPATH of the processes they mean to kill (`helpers.ingest_in_subprocess`), and the ingestion's commit worker
inherits it. With PODREC_CRASH_AT=<table>, the process is SIGKILLed right after its Delta commit to that table
(`quarantined_events` or `raw_user_events`): in a commit worker its parent (the `podrec ingest` process the test
watches) first, then itself. Without the variable this file does nothing.
"""

import os
import signal

_TABLE = os.environ.get("PODREC_CRASH_AT")

if _TABLE:
    import deltalake

    _write_deltalake = deltalake.write_deltalake

    def _write_then_crash(table_or_uri, *args, **kwargs):
        result = _write_deltalake(table_or_uri, *args, **kwargs)
        uri = getattr(table_or_uri, "table_uri", table_or_uri)
        if str(uri).rstrip("/").endswith(_TABLE):
            if os.environ.get("PODREC_COMMIT_WORKER_PARENT"):  # commit_worker.PARENT_PID_ENV
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    deltalake.write_deltalake = _write_then_crash
