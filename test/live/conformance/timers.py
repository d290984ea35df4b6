"""The conformance checks of a Python program (README.md beside it): select with a timeout,
threading.Event.wait, socket timeouts, queue.get(timeout), time.sleep and asyncio.wait_for, each
printing one JSON line of what it asked and what it got, measured on the program's own
CLOCK_MONOTONIC (time.monotonic_ns, the virtual clock under livesim).

Each check runs in a forked child, so that a wait that never returns (threading.Event.wait under
plain libfaketime: CPython waits with sem_clockwait on CLOCK_MONOTONIC, whose virtual date lies
decades ahead of the real clock) is killed instead of stopping the checks after it; the parent
waits for it on its own clock with time.sleep, the control."""
import asyncio
import json
import os
import queue
import select
import signal
import socket
import sys
import threading
import time

MS = 1_000_000
HANG_NS = 250 * MS


def emit(**fields):
    print(json.dumps(fields), flush=True)


def result(call, asked, got, waits, resolution, cpu, ret=None):
    fields = {"call": call, "askedNs": asked, "gotNs": got, "waits": waits, "resolutionNs": resolution, "cpuNs": cpu, "clockNs": time.monotonic_ns()}
    if ret:
        fields["ret"] = ret
    emit(**fields)


def waits(call, d_ns, n, once, resolution):
    """n waits of d_ns by once(seconds), which returns None when it ended by its timeout. The CPU
    time the process spends in the span (the interpreter's own work around the waits: copy-on-write
    faults after the fork, asyncio's loop) is virtual time too, and is reported with the result."""
    t0, c0 = time.monotonic_ns(), time.process_time_ns()
    for i in range(n):
        ret = once(d_ns / 1e9)
        if ret is not None:
            return result(call, n * d_ns, time.monotonic_ns() - t0, n, resolution, time.process_time_ns() - c0, f"wait {i + 1}: {ret}")
    result(call, n * d_ns, time.monotonic_ns() - t0, n, resolution, time.process_time_ns() - c0)


# A pipe nobody writes to: its read end never becomes readable.
QUIET_R, QUIET_W = os.pipe()


def by_select(s):
    ready = select.select([QUIET_R], [], [], s)
    return None if ready == ([], [], []) else f"ready: {ready}"


def by_sleep(s):
    time.sleep(s)


def by_event(s):
    return None if threading.Event().wait(s) is False else "the event was set"


def by_queue(s):
    try:
        queue.Queue().get(timeout=s)
        return "got an item"
    except queue.Empty:
        return None


def by_socket(s):
    a, b = socket.socketpair()  # b stays open and quiet
    a.settimeout(s)
    try:
        a.recv(16)
        return "received data"
    except TimeoutError:
        return None
    finally:
        a.close()
        b.close()


def asyncio_waits(call, d_ns, n, _once, resolution):
    """n waits of d_ns by asyncio.wait_for in one running loop, measured inside it: the loop's set-up
    and shutdown (asyncio.run's, milliseconds of the interpreter's CPU) are not the wait's."""

    async def main():
        loop = asyncio.get_running_loop()
        t0, c0 = time.monotonic_ns(), time.process_time_ns()
        for i in range(n):
            try:
                await asyncio.wait_for(loop.create_future(), d_ns / 1e9)
                return result(call, n * d_ns, time.monotonic_ns() - t0, n, resolution, time.process_time_ns() - c0, f"wait {i + 1}: the future completed")
            except TimeoutError:
                pass
        result(call, n * d_ns, time.monotonic_ns() - t0, n, resolution, time.process_time_ns() - c0)

    asyncio.run(main())


def check(call, once, d_ns, n, resolution=1000, runner=waits):
    """Run one check in a child process; the parent waits up to n × d_ns + HANG_NS of its clock.
    resolution: the granularity of the timeouts CPython hands to the system for it, in ns (locks and
    select take microseconds, rounded up)."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            runner(call, d_ns, n, once, resolution)
        except Exception as e:  # a check that cannot run says why
            emit(call=call, error=f"{type(e).__name__}: {e}")
        sys.stdout.flush()
        os._exit(0)
    start, limit = time.monotonic_ns(), n * d_ns + HANG_NS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            if status != 0:
                emit(call=call, error=f"the check ended with wait status {status}")
            return
        if time.monotonic_ns() - start > limit:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return emit(call=call, askedNs=n * d_ns, hung=f"no return within {limit // MS} ms of virtual time")
        time.sleep(0.05)


def main():
    check("time.sleep", by_sleep, 100 * MS, 1)
    check("time.sleep x5", by_sleep, 30 * MS, 5)
    check("select.select", by_select, 100 * MS, 1)
    check("select.select x5", by_select, 30 * MS, 5)
    check("threading.Event.wait", by_event, 100 * MS, 1)
    check("threading.Event.wait x5", by_event, 30 * MS, 5)
    check("queue.Queue.get(timeout)", by_queue, 100 * MS, 1)
    # Socket timeouts wait in poll(), asyncio's loop in epoll_wait: CPython rounds what is left of
    # the deadline up to whole milliseconds.
    check("socket.recv(settimeout)", by_socket, 100 * MS, 1, MS)
    check("asyncio.wait_for", None, 100 * MS, 1, MS, asyncio_waits)


main()
