"""A stand-in for Parsl's monitoring database manager where sqlalchemy is
not installed (Parsl asks for 2; Debian 12's python3-sqlalchemy 1.4 serves
and is in the check packages, so the real one runs there): it takes the
same arguments and writes the
type of each message that reached the hub into RUN_DIR/monitor-sink.txt, so
a test can see that the apps' resource monitors reported through the
executor's radio.  Only the database is replaced; the hub, the radio and the
monitor around each app are Parsl's."""

import os
import queue


def dbm_starter(resource_msgs, db_url, run_dir, logging_level, exit_event, log_config=None):
    path = os.path.join(run_dir, "monitor-sink.txt")
    while True:
        try:
            msg = resource_msgs.get(timeout=0.1)
        except queue.Empty:
            if exit_event.is_set():
                return
            continue
        try:
            kind = msg[0].name
        except (AttributeError, IndexError, TypeError):
            kind = type(msg).__name__
        with open(path, "a") as f:
            f.write(kind + "\n")
