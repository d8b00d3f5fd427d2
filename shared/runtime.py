"""Process-wide tuning shared by the API and the worker."""

import gc


def tune_gc() -> None:
    """Freeze the import-time heap and collect every 50k allocations instead of 700.

    Measured under `make bench`: the cyclic collector was the API's largest cost at high concurrency.
    Imports (LiteLLM above all) leave ~400k long-lived objects that a full collection walks (~0.5 s
    here); frozen, it skips them. At the default threshold a collection ran every request or two in
    the API, and every few records in the worker, each time re-examining the requests in flight or
    the batch in hand, so it grew with load. Every 50k allocations it costs little, and cyclic garbage
    stays a few MB. Call it once, after the imports and before serving.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
