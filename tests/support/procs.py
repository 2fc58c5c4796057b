"""Stopping a program the tests, bench/run or the demo started: the signal a deployment sends,
and KILL for one that does not exit in time, so that no run leaves a process behind.

Only the standard library is needed."""

import signal
import subprocess


def stop_proc(proc, sig=signal.SIGTERM, timeout=30):
    """Sends sig to proc (a subprocess.Popen) unless it has exited, and reaps it; KILLs it when
    it has not exited after timeout seconds. Returns False when it had to be killed."""
    if proc.poll() is not None:
        return True
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    return True
