"""The FastAPI process: validates requests and queues records; never writes MongoDB on the request path."""
