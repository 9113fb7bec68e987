"""Turns Dask distributed's message batching off, for bench/dask/perf.py.

In distributed 2022.12 the batched streams' intervals are not configuration: BatchedSend is
created with a literal interval (worker 2 ms, scheduler 5 ms per worker stream, client 10 ms, see
BatchedSend(...) in worker.py, scheduler.py, client.py). Importing this module makes every
BatchedSend made afterwards in this process send as soon as its loop runs (interval 0). Messages
queued in the same event-loop turn still go out together; nothing else changes.

perf.py imports it in its own process (scheduler and client) before it starts the cluster, and
names this file as the workers' preload (`distributed.worker.preload`): a worker imports its
preloads before it makes its batched stream. `dask_setup` also sets the stream made before, if any.
"""
from distributed.batched import BatchedSend

# A worker may import this file twice (its preload copy is reloaded): keep the first original.
_original_init = getattr(BatchedSend, '_batched_init', BatchedSend.__init__)
BatchedSend._batched_init = _original_init


def _unbatched_init(self, interval, loop=None, serializers=None):
    _original_init(self, 0, loop=loop, serializers=serializers)


BatchedSend.__init__ = _unbatched_init


def dask_setup(worker):
    stream = getattr(worker, 'batched_stream', None)
    if stream is not None:
        stream.interval = 0


def restore():
    """Batching on again for BatchedSends made from now on (in this process)."""
    BatchedSend.__init__ = _original_init
