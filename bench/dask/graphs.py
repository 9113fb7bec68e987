"""The workflow benchmark's graphs and micro-benchmarks on Dask distributed, for comparison.

    python3 bench/dask/graphs.py SPEC.json

SPEC.json is written by bench/workflows.bench.ts: the same recorded graphs with the same scaled
runtimes (tasks as [name, ms, [parent indices]], parents first), the sinks, the expected result,
and the micro-benchmark sizes. This script runs them on a LocalCluster of `workers` worker
processes with one thread each, and prints one JSON line (the last line of its output) that
the benchmark reads.

Each task burns its `ms` of CPU in the worker (a busy loop on the clock: Python has one) and
returns the same FNV-1a hash of its name and its inputs as the Rhizome task, so both systems
must return the same result for each graph.
"""
import json
import sys
import time

from distributed import Client, LocalCluster, get_task_stream


def fnv1a(text):
    h = 0x811C9DC5
    for ch in text:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return format(h, '08x')


def task_value(name, inputs):
    return fnv1a(name + '(' + ','.join(inputs) + ')')


def task(name, ms, *inputs):
    if ms > 0:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            pass
    return task_value(name, list(inputs))


def percentile(values, p):
    """Nearest rank, as bench/helpers.ts percentile."""
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    rank = -(-p * len(ordered) // 100)
    return ordered[min(len(ordered) - 1, max(0, int(rank) - 1))]


def run_graph(client, number, graph):
    # Keys are tuples, so no task name (a string argument) can be mistaken for a key, and carry
    # the graph's number: the scheduler would answer a key it has seen with the old result.
    dsk = {}
    for i, (name, ms, parents) in enumerate(graph['tasks']):
        dsk[('t', number, i)] = (task, name, ms, *[('t', number, p) for p in parents])
    sinks = [('t', number, i) for i in graph['sinks']]
    start = time.perf_counter()
    outputs = client.get(dsk, sinks)
    makespan_ms = (time.perf_counter() - start) * 1000
    result = task_value('sinks', list(outputs))
    return {'label': graph['label'], 'tasks': len(graph['tasks']), 'makespanMs': makespan_ms, 'ok': result == graph['expected']}


def run_chain(client, hops, expected):
    dsk = {('c', 0): (task, 'hop0', 0, 'start')}
    for i in range(1, hops):
        dsk[('c', i)] = (task, 'hop' + str(i), 0, ('c', i - 1))
    with get_task_stream(client) as stream:
        start = time.perf_counter()
        result = client.get(dsk, ('c', hops - 1))
        total_ms = (time.perf_counter() - start) * 1000
    stops = {}
    for record in stream.data:
        key = record['key']
        index = int(key.split(',')[-1].strip(' )')) if isinstance(key, str) else key[-1]
        stops[index] = max(s['stop'] for s in record['startstops'] if s['action'] == 'compute')
    hop_ms = [(stops[i] - stops[i - 1]) * 1000 for i in range(1, hops) if i in stops and i - 1 in stops]
    return {'hops': hops, 'totalMs': total_ms, 'msPerHop': total_ms / hops, 'p50': percentile(hop_ms, 50), 'p99': percentile(hop_ms, 99), 'ok': result == expected}


def run_fan(client, tasks):
    dsk = {('f', i): (task, 'noop' + str(i), 0) for i in range(tasks)}
    start = time.perf_counter()
    client.get(dsk, list(dsk.keys()))
    seconds = time.perf_counter() - start
    return {'tasks': tasks, 'seconds': seconds, 'tasksPerSecond': tasks / seconds}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    import dask
    import distributed
    cluster = LocalCluster(n_workers=spec['workers'], threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        client.get({('w', i): (task, 'warm' + str(i), 0) for i in range(100)}, [('w', i) for i in range(100)])
        graphs = [run_graph(client, number, g) for number, g in enumerate(spec['graphs'])]
        micro = spec['micro']
        chain = run_chain(client, micro['chainHops'], micro['chainExpected'])
        fan = run_fan(client, micro['fanTasks'])
        out = {'dask': dask.__version__, 'distributed': distributed.__version__, 'python': sys.version.split()[0],
               'workers': spec['workers'], 'graphs': graphs, 'chain': chain, 'fan': fan}
    finally:
        client.close()
        cluster.close()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
