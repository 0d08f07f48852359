"""Record this machine's own metrics as a CSV time series (real, noisy machine data).

Used once to make ``datasets/anomaly/source/vm_*.csv`` for ``benchmarks/bench_anomaly.py``
(see datasets/README.md): every INTERVAL seconds, for DURATION seconds, one row with
the CPU busy percentage (all cores, from /proc/stat), context switches and interrupts
per second, processes running, disk sectors written per second (all block devices,
/proc/diskstats), loopback bytes per second (/proc/net/dev) and available memory (MiB).

    python tools/record_metrics.py OUT.csv [INTERVAL] [DURATION]

OUT.csv is replaced only when the recording is complete (an interrupted one leaves it as it was).
"""
import os
import sys
import tempfile
import time


def _stat():
    cpu = ctxt = intr = running = 0
    with open("/proc/stat") as f:
        for line in f:
            p = line.split()
            if p[0] == "cpu":
                v = [int(a) for a in p[1:]]
                cpu = (sum(v) - v[3] - v[4], sum(v))
            elif p[0] == "ctxt":
                ctxt = int(p[1])
            elif p[0] == "intr":
                intr = int(p[1])
            elif p[0] == "procs_running":
                running = int(p[1])
    return cpu, ctxt, intr, running


def _disk():
    w = 0
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if p[2].startswith(("loop", "ram")) or p[2][-1].isdigit() and not p[2].startswith("nvme"):
                continue
            w += int(p[9])
    return w


def _net():
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith("lo:"):
                return int(line.split(":")[1].split()[0])
    return 0


def _mem():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    out = sys.argv[1]
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 1800.0
    prev = (_stat(), _disk(), _net(), time.time())
    end = time.time() + duration
    # Recorded into a temporary file beside OUT, which replaces OUT only once the recording
    # is complete: an existing dataset stays intact until then, and after a failure or Ctrl-C.
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(out)))
    try:
        with os.fdopen(fd, "w") as f:
            f.write("timestamp,cpu_busy_pct,ctx_switches_per_s,interrupts_per_s,procs_running,"
                    "disk_sectors_written_per_s,loopback_bytes_per_s,mem_available_mib\n")
            nxt = time.time() + interval
            while time.time() < end:
                time.sleep(max(0.0, nxt - time.time()))
                nxt += interval
                now = (_stat(), _disk(), _net(), time.time())
                (c0, x0, i0, _), d0, n0, t0 = prev
                (c1, x1, i1, r1), d1, n1, t1 = now
                dt = max(t1 - t0, 1e-6)
                busy = 100.0 * (c1[0] - c0[0]) / max(c1[1] - c0[1], 1)
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t1))},{busy:.1f},{(x1 - x0) / dt:.0f},"
                        f"{(i1 - i0) / dt:.0f},{r1},{(d1 - d0) / dt:.0f},{(n1 - n0) / dt:.0f},{_mem():.0f}\n")
                prev = now
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
