"""`python -m api`: serve the API with uvicorn, uvloop and httptools."""

import uvicorn

from shared.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "api.main:create_app_from_env",
        factory=True,
        host=settings.API_HOST,
        port=settings.API_PORT,
        workers=settings.API_WORKERS,
        loop="uvloop",
        http="httptools",
        log_level=settings.LOG_LEVEL.lower(),
        timeout_graceful_shutdown=int(settings.SHUTDOWN_GRACE_S),
        access_log=False,
    )


if __name__ == "__main__":
    main()
