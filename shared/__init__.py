"""Code used by both the API and the worker. It never imports `api` or `worker`."""
