"""The arq worker process: drains the Redis stream into MongoDB and runs maintenance and jobs."""
