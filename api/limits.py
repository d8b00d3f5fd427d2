"""Every input limit in one object, built from settings and handed to the body reader and the models."""

from dataclasses import dataclass

from shared.settings import Settings


@dataclass(frozen=True)
class Limits:
    """Defaults match the Settings defaults; a test or a script may build one without settings."""

    max_depth: int = 32  # levels of nesting below the body's top-level fields (extra_data is level 1)
    max_keys: int = 1000  # object keys in the whole body
    max_id_chars: int = 256  # user_id, session_id, event_id, query_id
    max_event_type_chars: int = 64
    max_url_chars: int = 8192  # target_url, page_url
    max_query_chars: int = 8000

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            max_depth=settings.MAX_EXTRA_DEPTH,
            max_keys=settings.MAX_EXTRA_KEYS,
            max_id_chars=settings.MAX_ID_CHARS,
            max_event_type_chars=settings.MAX_EVENT_TYPE_CHARS,
            max_url_chars=settings.MAX_URL_CHARS,
            max_query_chars=settings.MAX_QUERY_CHARS,
        )
