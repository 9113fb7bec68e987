"""Driver loss on Dask distributed: the scheduler is SIGKILLed halfway through a graph.

    python3 bench/dask-driver-kill.py [--workers N] [--width W] [--task-ms MS]

The Dask side of Rhizome's takeover measurement (bench/dask-driver-kill.ts runs this N times and
summarizes). It starts a `dask-scheduler` and `--workers` `dask-worker` processes (each with a
nanny, one thread, on 127.0.0.1, each in a process group of its own), then:

1. Runs the graph once without faults: the reference result and makespan.
2. Submits it again and SIGKILLs the scheduler when half its tasks have started. Reports what
   the client saw: each future's status, the exception `result()` raised, and how long after the
   kill the futures stopped being pending.
3. Starts a new scheduler on the same address at once (a supervisor could do no better), waits
   for the client and the workers to come back (a worker of this Dask version exits when its
   scheduler dies; each is restarted the moment it does), submits the same graph again, and
   reports the time from the kill to the first task started, the executions per key (re-runs =
   executions beyond a key's first) and whether the result matched.

The graph: 1 root -> W tasks (each on the root) -> W tasks (each on two of the previous layer)
-> 1 reduce; 2W + 2 tasks of `--task-ms` ms each (a sleep: the workers' CPU is not the point).
Each task appends "key monotonic-seconds" to a log file with O_APPEND as it starts, so the
executions are counted by the workers themselves, not inferred from the scheduler (which dies).
CLOCK_MONOTONIC is one clock for every process on the machine, so those times compare with ours.

Prints one JSON line (the last line of output). Every wait is bounded; the whole run is bounded by
RUN_TIMEOUT_S (SIGALRM); every process started is killed, by its process group, on the way out.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Whole run: 3 graphs of ~1-3 s each plus three process start-ups of ~2-5 s each on a busy
# 2-core machine; 150 s leaves room several times over and still ends a hung run.
RUN_TIMEOUT_S = 150
# A scheduler or worker process start-up (imports distributed: ~1-3 s here).
START_TIMEOUT_S = 30
# One graph's run: 302 tasks of 20 ms on 2 workers take ~3 s without faults.
GRAPH_TIMEOUT_S = 60
# How long the client may take to notice the kill. Its futures are cancelled when the stream to
# the scheduler breaks, so a TCP reset on 127.0.0.1: milliseconds, unless it does not notice.
DETECT_TIMEOUT_S = 30
# Polling interval of the task log and of future statuses: 5 ms, small next to a 20 ms task.
POLL_S = 0.005

children = []


def start(argv, log_path):
    log = open(log_path, 'ab')
    # A process group of its own: the worker's nanny spawns the worker, and killpg takes both.
    child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    log.close()
    children.append(child)
    return child


def kill_group(child, sig=signal.SIGKILL):
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def cleanup(*_):
    for child in children:
        kill_group(child)
    children.clear()


def on_signal(signum, _frame):
    cleanup()
    sys.stderr.write(f'dask-driver-kill: stopped by signal {signum}\n')
    os._exit(128 + signum)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def step(log, key, ms, kind, i, *inputs):
    """One task: log the start, sleep, return a value that depends on every input."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f'{key} {time.monotonic():.6f}\n'.encode())
    finally:
        os.close(fd)
    time.sleep(ms / 1000)
    return combine(kind, i, inputs)


def combine(kind, i, inputs):
    if kind == 'root':
        return 1
    if kind == 'a':
        return inputs[0] * 1000 + i
    if kind == 'b':
        return (inputs[0] * 31 + inputs[1]) % 1_000_003
    return sum(inputs) % 1_000_000_007


def expected(width):
    """The graph's result computed here, without Dask."""
    root = combine('root', 0, ())
    a = [combine('a', i, (root,)) for i in range(width)]
    b = [combine('b', i, (a[i], a[(i + 1) % width])) for i in range(width)]
    return combine('reduce', 0, b)


def submit_graph(client, prefix, log, width, ms):
    """The graph as futures with readable keys (prefix-kind-i); returns (all futures, the reduce)."""
    def sub(kind, i, *deps):
        key = f'{prefix}-{kind}-{i}'
        return client.submit(step, log, key, ms, kind, i, *deps, key=key, pure=False)
    root = sub('root', 0)
    a = [sub('a', i, root) for i in range(width)]
    b = [sub('b', i, a[i], a[(i + 1) % width]) for i in range(width)]
    final = sub('reduce', 0, *b)
    return [root, *a, *b, final], final


def read_log(path):
    """[(key, monotonic seconds)] of the executions logged so far."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        key, _, at = line.partition(' ')
        if at:
            rows.append((key, float(at)))
    return rows


def strip(key, prefix):
    return key[len(prefix) + 1:]


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(POLL_S)
    raise TimeoutError(f'{what}: not within {timeout_s} s')


def start_cluster(tmp, port, workers):
    address = f'tcp://127.0.0.1:{port}'
    scheduler = start_scheduler(tmp, port, 'scheduler.log')
    nannies = [start_worker(tmp, address, n) for n in range(workers)]
    return address, scheduler, nannies


# The command-line programs run with this Python, so they are the distributed that it imports.
SCHEDULER = [sys.executable, '-m', 'distributed.cli.dask_scheduler']
WORKER = [sys.executable, '-m', 'distributed.cli.dask_worker']


def start_scheduler(tmp, port, log_name):
    return start([*SCHEDULER, '--host', '127.0.0.1', '--port', str(port), '--no-dashboard'], os.path.join(tmp, log_name))


def start_worker(tmp, address, n):
    return start([*WORKER, address, '--nthreads', '1', '--host', '127.0.0.1', '--no-dashboard',
                  '--memory-limit', '0', '--local-directory', os.path.join(tmp, f'worker-{n}'),
                  '--name', f'worker-{n}'], os.path.join(tmp, f'worker-{n}.log'))


def workers_connected(client):
    try:
        return len(client.scheduler_info().get('workers', {}))
    except Exception:
        return 0


def baseline(client, tmp, width, ms):
    log = os.path.join(tmp, 'baseline.log')
    futures, final = submit_graph(client, 'base', log, width, ms)
    started = time.monotonic()
    result = final.result(timeout=GRAPH_TIMEOUT_S)
    makespan_ms = (time.monotonic() - started) * 1000
    client.cancel(futures)
    return result, makespan_ms, len(read_log(log))


def kill_midway(client, tmp, scheduler, width, ms):
    """Submit, kill the scheduler at half the tasks started, and watch the client notice."""
    log = os.path.join(tmp, 'killed.log')
    tasks = 2 * width + 2
    futures, final = submit_graph(client, 'run', log, width, ms)
    wait_until(lambda: len(read_log(log)) >= tasks // 2, GRAPH_TIMEOUT_S, 'half the graph')
    killed_at = time.monotonic()
    os.killpg(scheduler.pid, signal.SIGKILL)
    started_at_kill = len(read_log(log))
    statuses_at_kill = count_statuses(futures)
    wait_until(lambda: all(f.status != 'pending' for f in futures), DETECT_TIMEOUT_S, 'futures to leave pending')
    noticed_ms = (time.monotonic() - killed_at) * 1000
    error = None
    try:
        final.result(timeout=DETECT_TIMEOUT_S)
    except BaseException as err:  # CancelledError is a BaseException on Python 3.8+
        error = f'{type(err).__module__}.{type(err).__qualname__}: {err}'
    scheduler.wait(timeout=10)
    return {
        'log': log, 'killedAt': killed_at, 'startedAtKill': started_at_kill,
        'statusesAtKill': statuses_at_kill, 'statusesAfter': count_statuses(futures),
        'noticedMs': noticed_ms, 'resultError': error, 'clientStatus': client.status
    }


def count_statuses(futures):
    counts = {}
    for f in futures:
        counts[f.status] = counts.get(f.status, 0) + 1
    return counts


def recover(client, tmp, port, nannies, workers, killed_at):
    """
    A new scheduler on the same address, at once. The client reconnects by itself (it retries for
    its connect timeout). Workers of this Dask version do not: each closes, with its nanny, when
    the stream to its scheduler breaks. So each is restarted the moment its process exits, as a
    supervisor (systemd's Restart=always) would; one that instead rejoins the new scheduler is
    left alone.
    """
    address = f'tcp://127.0.0.1:{port}'
    timeline = {}
    scheduler = start_scheduler(tmp, port, 'scheduler-2.log')
    timeline['schedulerSpawnedMs'] = (time.monotonic() - killed_at) * 1000
    restarted = [False] * workers
    exited_ms = []

    def step_recovery():
        if 'clientConnectedMs' not in timeline and client.status in ('running', 'closed'):
            timeline['clientConnectedMs'] = (time.monotonic() - killed_at) * 1000
        for n, nanny in enumerate(nannies):
            if not restarted[n] and nanny.poll() is not None:
                exited_ms.append((time.monotonic() - killed_at) * 1000)
                nannies[n] = start_worker(tmp, address, n)
                restarted[n] = True
        return client.status == 'closed' or (client.status == 'running' and workers_connected(client) >= workers)

    wait_until(step_recovery, START_TIMEOUT_S, 'client and workers to come back')
    client_reconnected = client.status == 'running'
    if not client_reconnected:
        from distributed import Client
        client = Client(address, timeout=START_TIMEOUT_S)
        timeline['clientConnectedMs'] = (time.monotonic() - killed_at) * 1000
        wait_until(lambda: workers_connected(client) >= workers, START_TIMEOUT_S, 'workers to join')
    timeline['workersExitedMs'] = max(exited_ms) if exited_ms else None
    timeline['workersJoinedMs'] = (time.monotonic() - killed_at) * 1000
    return client, scheduler, client_reconnected, sum(restarted), timeline


def resubmit(client, tmp, width, ms, killed_at, timeline):
    log = os.path.join(tmp, 'resubmitted.log')
    timeline['resubmittedMs'] = (time.monotonic() - killed_at) * 1000
    futures, final = submit_graph(client, 'run', log, width, ms)
    result = final.result(timeout=GRAPH_TIMEOUT_S)
    timeline['doneMs'] = (time.monotonic() - killed_at) * 1000
    rows = read_log(log)
    timeline['firstTaskMs'] = (min(at for _, at in rows) - killed_at) * 1000
    client.cancel(futures)
    return result, log


def executions(killed_log, resubmitted_log, tasks):
    first = [strip(k, 'run') for k, _ in read_log(killed_log)]
    second = [strip(k, 'run') for k, _ in read_log(resubmitted_log)]
    per_key = {}
    for key in first + second:
        per_key[key] = per_key.get(key, 0) + 1
    ran_before = set(first)
    return {
        'tasks': tasks,
        'executedBeforeRestart': len(ran_before),
        'resubmittedExecutions': len(second),
        # Tasks that had run before the kill and ran again after it: work lost with the scheduler.
        'rerun': sum(1 for key in second if key in ran_before),
        'executionsBeyondFirst': sum(n - 1 for n in per_key.values()),
        'maxExecutionsPerKey': max(per_key.values(), default=0),
        'keysNeverRun': tasks - len(per_key)
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--width', type=int, default=150)
    parser.add_argument('--task-ms', type=float, default=20)
    args = parser.parse_args()
    if not 1 <= args.workers <= 4:
        parser.error('--workers is 1 to 4 (the machine has few cores)')

    from distributed import Client
    import distributed

    tmp = tempfile.mkdtemp(prefix='rhizome-dask-kill-')
    port = free_port()
    address, scheduler, nannies = start_cluster(tmp, port, args.workers)
    client = Client(address, timeout=START_TIMEOUT_S)
    out = {'distributed': distributed.__version__, 'python': sys.version.split()[0],
           'workers': args.workers, 'taskMs': args.task_ms, 'tasks': 2 * args.width + 2}
    try:
        wait_until(lambda: workers_connected(client) >= args.workers, START_TIMEOUT_S, 'workers to join')
        want = expected(args.width)
        base_result, out['faultFreeMakespanMs'], out['faultFreeExecutions'] = baseline(client, tmp, args.width, args.task_ms)
        out['faultFreeMatched'] = base_result == want
        kill = kill_midway(client, tmp, scheduler, args.width, args.task_ms)
        out['kill'] = {k: v for k, v in kill.items() if k not in ('log', 'killedAt')}
        client, scheduler, out['clientReconnected'], out['workersRestarted'], timeline = recover(
            client, tmp, port, nannies, args.workers, kill['killedAt'])
        result, resubmitted_log = resubmit(client, tmp, args.width, args.task_ms, kill['killedAt'], timeline)
        out['afterKill'] = timeline
        out['resultMatched'] = result == want
        out['executions'] = executions(kill['log'], resubmitted_log, out['tasks'])
        client.close(timeout=10)
    finally:
        cleanup()
        # DASK_KILL_KEEP=1 keeps the temp dir: the scheduler's and workers' logs, for a look.
        if os.environ.get("DASK_KILL_KEEP") is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))


if __name__ == '__main__':
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(RUN_TIMEOUT_S)
    main()
