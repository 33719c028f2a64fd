"""Raise the calling thread's scheduling priority as far as the OS allows without asking.

Used by the driver's heartbeat sender (and its reader), whose timing keeps the controller's
watchdog fed: under CPU load a thread at the default priority can be held off the CPU for
hundreds of milliseconds.

Order of attempts (Linux; elsewhere nothing is changed):

1. ``SCHED_FIFO`` at priority :data:`RT_PRIORITY`, or lower when ``RLIMIT_RTPRIO`` allows
   only less (granted to root, to ``CAP_SYS_NICE``, or by ``ulimit -r`` / systemd
   ``LimitRTPRIO=``);
2. the lowest nice value ``RLIMIT_NICE`` allows (``ulimit -e`` / ``LimitNICE=``);
3. nothing (the thread keeps the process's priority).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

try:
    import resource  # POSIX only
except ImportError:  # pragma: no cover - Windows
    resource = None

logger = logging.getLogger("devices")

RT_PRIORITY = 10  # modest: above ordinary threads, below the kernel's own RT work


def raise_thread_priority() -> str:
    """Raise the calling thread's priority as far as allowed; return what was obtained.

    Returns
    -------
    obtained : str
        ``"SCHED_FIFO <prio>"``, ``"nice <n>"`` or ``"default (...)"`` saying why nothing
        could be raised.
    """
    if not sys.platform.startswith("linux") or resource is None:
        return "default (priority raising is implemented for Linux only)"

    rt_soft = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    rt_cap = RT_PRIORITY if rt_soft == resource.RLIM_INFINITY else min(RT_PRIORITY, rt_soft)
    for prio in dict.fromkeys((RT_PRIORITY, rt_cap)):
        if prio < 1:
            continue
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: this thread
            return f"SCHED_FIFO {prio}"
        except (PermissionError, OSError):
            continue
    tid = threading.get_native_id()
    nice_soft = resource.getrlimit(resource.RLIMIT_NICE)[0]
    current = os.getpriority(os.PRIO_PROCESS, tid)
    floor = -20 if nice_soft == resource.RLIM_INFINITY else 20 - int(nice_soft)
    if floor < current:
        with contextlib.suppress(PermissionError, OSError):
            os.setpriority(os.PRIO_PROCESS, tid, floor)  # Linux: per thread
            return f"nice {floor}"
    return (f"default (nice {current}; RLIMIT_RTPRIO={rt_soft}, RLIMIT_NICE={nice_soft} grant "
            "nothing higher)")
