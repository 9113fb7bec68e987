"""The performance summary's Dask side (bench/perf.bench.ts), on one machine, 127.0.0.1.

    python3 bench/dask/perf.py SPEC.json

SPEC.json is written by bench/perf.bench.ts. For each mode in `modes` ("unbatched": message
batching off, see no_batching.py; "default": Dask as installed) this starts a LocalCluster of
`workers` worker processes × 1 thread and measures:

- noop: `client.submit(noop, i, pure=False).result()`, one at a time after a warm-up; each call's ms.
- map: `client.map(noop, range(N), pure=False)` and waiting for all: tasks per second.
- chain: `chainHops` no-op tasks, each consuming the last one's output, submitted as one graph
  (graphs.py run_chain: the same hashed values as Rhizome's chain, checked).
In the "default" mode only, also:
- graphs: the recorded graphs of the spec (graphs.py run_graph), makespan and result check.
- cpu: a fixed amount of Python loop work calibrated in a worker to `cpuTaskMs`. Single-task time:
  `cpuAloneTasks` such tasks on one worker alone (the other idle; half before the batch, half
  after), their makespans ÷ their number; the batch: `cpuTasks` of them on all workers at once.
  Efficiency = tasks × single ÷ (workers × batch makespan).

Prints one JSON line (the last line of its output) that the benchmark reads. Each part stops
early when the spec's `budgetS` for it has passed; counts say what was done.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The workers are spawned processes: they import graphs.py (tasks are pickled by reference to it)
# from this folder.
os.environ['PYTHONPATH'] = HERE + (os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH') else '')

import dask  # noqa: E402
import distributed  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import graphs  # noqa: E402


def noop(i):
    return None


def spin(n):
    x = 0
    for i in range(n):
        x = (x + i) % 1000003
    return x


def spin_rate(sample_ms):
    """Iterations of `spin` per ms in this process (runs in a worker): the best of 3 samples of at
    least `sample_ms` each, so a moment of contention from other processes does not shrink the task."""
    spin(100000)
    n = 100000
    rates = []
    while len(rates) < 3:
        start = time.perf_counter()
        spin(n)
        ms = (time.perf_counter() - start) * 1000
        if ms >= sample_ms:
            rates.append(n / ms)
        else:
            n = int(n * min(10, 1.5 * sample_ms / max(ms, 0.1)))
    return max(rates)


def cpu_task(i, n):
    spin(n)
    return i


def summary(values):
    return {'n': len(values), 'p50': graphs.percentile(values, 50), 'p99': graphs.percentile(values, 99)}


def measure_noop(client, calls, budget_s, offset):
    for i in range(50):
        client.submit(noop, offset - 1 - i, pure=False).result()
    times = []
    deadline = time.perf_counter() + budget_s
    for i in range(calls):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        client.submit(noop, offset + i, pure=False).result()
        times.append((time.perf_counter() - start) * 1000)
    return summary(times)


def measure_map(client, tasks):
    start = time.perf_counter()
    futures = client.map(noop, range(tasks), pure=False)
    wait(futures)
    seconds = time.perf_counter() - start
    del futures
    return {'tasks': tasks, 'seconds': seconds, 'tasksPerSecond': tasks / seconds}


def run_batch(client, tasks, n, first, workers=None):
    """`tasks` CPU tasks at once (on `workers` only, if given); their makespan in ms."""
    start = time.perf_counter()
    futures = client.map(cpu_task, range(first, first + tasks), [n] * tasks, workers=workers, pure=False)
    wait(futures)
    return (time.perf_counter() - start) * 1000


def measure_cpu(client, workers, tasks, task_ms, alone_tasks):
    rate = client.submit(spin_rate, 100, pure=False).result()
    n = round(task_ms * rate)
    client.submit(cpu_task, -1, n, pure=False).result()
    # One worker alone, the other idle: half the single-worker tasks before the batch, half after,
    # so a change in the machine's load during the measurement weighs on both sides alike.
    first = [sorted(client.scheduler_info()['workers'])[0]]
    half = alone_tasks // 2
    alone_ms = run_batch(client, half, n, 1_000_000, first)
    makespan = run_batch(client, tasks, n, 0)
    alone_ms += run_batch(client, alone_tasks - half, n, 2_000_000, first)
    single_ms = alone_ms / alone_tasks
    return {'iterationsPerMs': rate, 'iterations': n, 'tasks': tasks, 'aloneTasks': alone_tasks, 'singleMs': single_ms,
            'makespanMs': makespan, 'efficiency': tasks * single_ms / (workers * makespan)}


def batching_intervals(client, cluster):
    """The batched streams' intervals in ms, as the processes have them: proof of the mode."""
    workers = client.run(lambda dask_worker: dask_worker.batched_stream.interval * 1000)
    scheduler = [bs.interval * 1000 for bs in cluster.scheduler.stream_comms.values()]
    return {'workers': sorted(workers.values()), 'scheduler': scheduler}


def run_mode(spec, mode):
    if mode == 'unbatched':
        import no_batching
        config = {'distributed.worker.preload': [os.path.join(HERE, 'no_batching.py')]}
    else:
        no_batching = None
        config = {}
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=spec['workers'], threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        out = {'mode': mode}
        client.get({('w', i): (graphs.task, 'warm' + str(i), 0) for i in range(100)}, [('w', i) for i in range(100)])
        out['intervalsMs'] = batching_intervals(client, cluster)
        out['noop'] = measure_noop(client, spec['noopCalls'], spec['noopBudgetS'], 1_000_000)
        out['map'] = measure_map(client, spec['mapTasks'])
        out['chain'] = graphs.run_chain(client, spec['chainHops'], spec['chainExpected'])
        if mode == 'default':
            out['graphs'] = [graphs.run_graph(client, number, g) for number, g in enumerate(spec['graphs'])]
            out['cpu'] = measure_cpu(client, spec['workers'], spec['cpuTasks'], spec['cpuTaskMs'], spec['cpuAloneTasks'])
        return out
    finally:
        client.close()
        cluster.close()
        if no_batching is not None:
            no_batching.restore()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    modes = [run_mode(spec, mode) for mode in spec['modes']]
    print(json.dumps({'dask': dask.__version__, 'distributed': distributed.__version__, 'python': sys.version.split()[0],
                      'workers': spec['workers'], 'modes': modes}))


if __name__ == '__main__':
    main()
