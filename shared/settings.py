"""One settings object for both processes, read from the environment and `.env`."""

from functools import cached_property
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Field names match the environment variables so one grep finds both.

    Build it in an entry point and pass it down; tests build their own.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    # Storage
    MONGODB_URI: str = "mongodb://127.0.0.1:27017"
    MONGO_DB: str = "llm_experiment"
    MONGO_TIMEOUT_MS: int = Field(default=5000, ge=100)
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_TIMEOUT_MS: int = Field(default=2000, ge=100)  # API: a Redis call slower than this falls back
    STREAM_PREFIX: str = "llmlog"

    # LLM
    LITELLM_MODEL: str = "gpt-4o-mini"
    LLM_API_BASE: str = ""  # e.g. a local OpenAI-compatible server; counts as a configured provider
    LLM_API_KEY: str = ""  # passed to LiteLLM as api_key; provider keys in the environment work too
    LLM_MODEL_LIST: str = ""  # YAML/JSON file of LiteLLM Router deployments (model_list); replaces the two above
    LLM_TIMEOUT_S: float = Field(default=60.0, gt=0)
    LLM_NUM_RETRIES: int = Field(default=2, ge=0)  # per model, by LiteLLM's Router, before a fallback
    LLM_FALLBACKS: str = ""  # comma-separated models tried in order when the primary fails
    LLM_TEMPERATURE: float | None = Field(default=None, ge=0, le=2)  # None: the provider's default
    LLM_MOCK: bool | None = None  # None: mock only when no provider key is present
    LLM_MOCK_CHUNK_DELAY_MS: int = Field(default=30, ge=0, le=10_000)  # pace of streamed mock answers (demo, tests)
    LLM_SYSTEM_PROMPT: str = (
        "You are a helpful assistant. When you recommend web pages, give each one as a "
        "markdown link [title](url) followed by a one-sentence description."
    )

    # Sources, sessions, experiments
    SOURCES_PROVIDER: str = "none"  # none | static | a LiteLLM search provider (tavily, exa_ai, brave, ...)
    SOURCES_FILE: str = ""  # the curated JSON file of the static provider
    SOURCES_MAX: int = Field(default=5, ge=1, le=50)
    SEARCH_TIMEOUT_S: float = Field(default=10.0, gt=0)
    SESSION_HISTORY_TURNS: int = Field(default=5, ge=0)  # earlier turns sent as context; 0 turns it off
    SESSION_TTL_S: int = Field(default=86_400, ge=60)  # idle sessions' history expires from Redis
    EXPERIMENT_FILE: str = ""  # YAML or JSON experiment with weighted arms; empty: no experiment

    # API
    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8000
    API_WORKERS: int = Field(default=1, ge=1)
    ADMIN_API_KEY: str = ""
    INGEST_API_KEYS: str = ""  # comma-separated; empty means ingest is open
    CORS_ORIGINS: str = ""  # comma-separated origins (or "*"); set: other origins get 403. Empty: no CORS
    MAX_EVENT_BYTES: int = Field(default=64 * 1024, ge=1024)
    MAX_BATCH_BYTES: int = Field(default=1024 * 1024, ge=1024)
    MAX_BATCH_EVENTS: int = Field(default=500, ge=1)
    MAX_EXTRA_DEPTH: int = Field(default=32, ge=1, le=90)  # MongoDB's own limit is 100 levels
    MAX_EXTRA_KEYS: int = Field(default=1000, ge=1)  # object keys in one body, all levels
    MAX_ID_CHARS: int = Field(default=256, ge=1)  # user_id, session_id, event_id, query_id
    MAX_EVENT_TYPE_CHARS: int = Field(default=64, ge=1)
    MAX_URL_CHARS: int = Field(default=8192, ge=1)  # target_url, page_url
    MAX_QUERY_CHARS: int = Field(default=8000, ge=1)
    QUEUE_HIGH_WATERMARK: int = Field(default=1_000_000, ge=1)
    RETRY_AFTER_S: int = Field(default=5, ge=1)
    QUERY_RATE_PER_MIN: int = Field(default=30, ge=0)  # /query calls per user_id per minute; 0 disables
    QUERY_IP_RATE_PER_MIN: int = Field(default=120, ge=0)  # per client IP (a lab may share one NAT); 0 disables

    # Worker
    BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    FLUSH_INTERVAL_MS: int = Field(default=200, ge=1)
    RECLAIM_IDLE_MS: int = Field(default=30_000, ge=100)
    MAX_DELIVERIES: int = Field(default=5, ge=1)
    BACKOFF_MAX_S: float = Field(default=10.0, gt=0)
    SHUTDOWN_GRACE_S: float = Field(default=10.0, gt=0)

    # Export
    EXPORT_TTL_S: int = Field(default=86_400, ge=60)  # finished export files are deleted after this
    EXPORT_SETTLE_S: float | None = Field(default=None, ge=0)  # paging lag margin; None: LLM_TIMEOUT_S + 5
    EXPORT_MAX_COLUMNS: int = Field(default=1000, ge=1)  # cap on flattened extra_data columns
    EXPORT_JOB_TIMEOUT_S: float = Field(default=3300, gt=0, le=3500)  # below arq's job_timeout (3600)

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @cached_property
    def ingest_keys(self) -> tuple[bytes, ...]:
        """Encoded once: the ingest check runs on every request."""
        return tuple(k.strip().encode() for k in self.INGEST_API_KEYS.split(",") if k.strip())

    @property
    def export_settle_s(self) -> float:
        """Long enough for any request to finish: a /query may wait on search, then LLM_TIMEOUT_S on the LLM."""
        if self.EXPORT_SETTLE_S is not None:
            return self.EXPORT_SETTLE_S
        return self.SEARCH_TIMEOUT_S + self.LLM_TIMEOUT_S + 5

    @property
    def cors_origins(self) -> list[str]:
        # Browsers send `scheme://host[:port]` in lower case without a trailing slash.
        return [o.strip().rstrip("/").lower() for o in self.CORS_ORIGINS.split(",") if o.strip()]
