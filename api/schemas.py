"""Request and response models: the public contract, with the input limits."""

import functools
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from api.limits import Limits

_DEFAULT_LIMITS = Limits()
M = TypeVar("M", bound=BaseModel)


def _one_message(message: str) -> WrapValidator:
    """One clear error for a union, instead of one per member ("should be a valid string", "... int")."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("invalid_value", message) from None

    return WrapValidator(validate)


@dataclass(frozen=True)
class MaxChars:
    """At most `Limits.<limit>` characters.

    The app validates through `with_limits`, which turns this into pydantic's `max_length`; the model
    validated directly reads the limit from the context (`model_validate(context=limits)`). The
    OpenAPI schema carries `x-limit: <limit>`, which `api.openapi` turns into the app's maxLength.
    """

    limit: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-limit"] = self.limit
        return json_schema

    def _check(self, value: str, info: ValidationInfo) -> str:
        limit = getattr(info.context if isinstance(info.context, Limits) else _DEFAULT_LIMITS, self.limit)
        if len(value) > limit:
            raise PydanticCustomError("string_too_long", "String should have at most {max_length} characters",
                                      {"max_length": limit})
        return value


def with_limits(model: type[M], limits: Limits) -> type[M]:
    """`model` with each `MaxChars` turned into pydantic's own `max_length` at the configured value.

    Same errors, but checked inside pydantic-core: as Python callbacks, one per string field, the
    length checks were 40% of validating an event (4.2 µs -> 2.5 µs per `EventIn`). Built once per
    (model, limits); `model` itself, with `MaxChars`, stays the public schema.
    """
    return _with_limits(model, limits)


@functools.cache
def _with_limits(model: type[M], limits: Limits) -> type[M]:
    hints = get_type_hints(model, include_extras=True)
    fields: dict[str, Any] = {
        name: (_limited(hints[name], limits), Field(default=info.default, description=info.description))
        for name, info in model.model_fields.items()
        if _limited(hints[name], limits) != hints[name]
    }
    return create_model(model.__name__, __base__=model, __module__=model.__module__, **fields) if fields else model


def _limited(annotation: Any, limits: Limits) -> Any:
    """The annotation with `MaxChars(limit)` replaced by `StringConstraints(max_length=<limit>)`, at any depth."""
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        metadata = [StringConstraints(max_length=getattr(limits, item.limit)) if isinstance(item, MaxChars) else item
                    for item in annotation.__metadata__]
        return Annotated[(_limited(args[0], limits), *metadata)]
    if get_origin(annotation) in (Union, UnionType):
        return Union[tuple(_limited(arg, limits) for arg in args)]  # noqa: UP007: a tuple of members
    return annotation


# Empty strings are refused: a front end should omit a field (or send null) rather than send "".
NonEmpty = Annotated[StrictStr, StringConstraints(min_length=1)]
UserId = Annotated[NonEmpty, MaxChars("max_id_chars")]
SessionId = Annotated[NonEmpty, MaxChars("max_id_chars")]
EventType = Annotated[NonEmpty, MaxChars("max_event_type_chars")]
QueryText = Annotated[NonEmpty, MaxChars("max_query_chars")]
Url = Annotated[NonEmpty, MaxChars("max_url_chars")]
ShortText = Annotated[NonEmpty, MaxChars("max_id_chars")]
ClientTimestamp = Annotated[
    Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)] | StrictInt | StrictFloat,
    _one_message("must be a non-empty string of at most 64 characters or a number"),
]


class ClientBody(BaseModel):
    """Unknown top-level fields are kept and stored as sent, except the names the server sets."""

    model_config = ConfigDict(extra="allow")
    server_fields: ClassVar[frozenset[str]] = frozenset({"id", "_id", "timestamp", "type"})

    @model_validator(mode="before")
    @classmethod
    def _refuse_server_fields(cls, data: Any) -> Any:
        # Refused rather than overwritten or renamed: the client learns its field would not be stored.
        if isinstance(data, dict) and not cls.server_fields.isdisjoint(data):
            name = min(cls.server_fields.intersection(data))
            hint = "; send the client's clock as client_timestamp" if name == "timestamp" else ""
            raise PydanticCustomError(
                "server_field", "{field} is set by the server and cannot be sent" + hint, {"field": name}
            )
        return data


class EventIn(ClientBody):
    """`POST /log_event`."""

    server_fields = ClientBody.server_fields | {"event_time", "experiment", "arm"}

    user_id: UserId
    event_type: EventType
    session_id: SessionId | None = None
    query: QueryText | None = None
    target_url: Url | None = None
    page_url: Url | None = None
    extra_data: dict[str, Any] | None = None
    event_id: ShortText | None = Field(default=None, description="Idempotency key: a retry with the same user_id and event_id is stored once.")
    query_id: ShortText | None = Field(default=None, description="The /query answer that showed the link.")
    client_timestamp: ClientTimestamp | None = Field(
        default=None, description="When the event happened, by the client clock: ISO-8601 or epoch ms.")
    sent_at: ClientTimestamp | None = Field(
        default=None, description="When the client sent it, by the same clock; corrects client clock skew.")


class QueryIn(ClientBody):
    """`POST /query`."""

    server_fields = ClientBody.server_fields | {
        "query_id", "response", "source", "model_used", "latency_ms",
        "prompt_tokens", "completion_tokens", "cost_usd", "error",
        "sources_provider", "model_requested", "ttft_ms", "finish_reason", "temperature",
        "system_prompt_hash", "history_turns", "streamed", "aborted", "experiment", "arm",
    }

    user_id: UserId
    session_id: SessionId | None = None
    query: QueryText
    stream: StrictBool = Field(default=False, description="Answer as server-sent events (as does `Accept: text/event-stream`).")


class SourceOut(BaseModel):
    title: str
    url: str
    content: str
    rank: int | None = None


class QueryOut(BaseModel):
    response: str
    source: list[SourceOut]
    query_id: str
    model_used: str
    experiment: str | None = None
    arm: str | None = Field(default=None, description="The participant's experiment arm, for the front end to render its condition.")


class QueuedOut(BaseModel):
    status: str = Field("queued", description='"queued" (in the Redis stream) or "stored" (written to MongoDB directly)')
    id: str


class FieldErrorOut(BaseModel):
    field: str
    message: str


class BatchQueuedOut(BaseModel):
    status: str = "queued"
    ids: list[str] = Field(description="One id per event, in the order sent.")


class EventResultOut(BaseModel):
    index: int
    id: str | None = None
    error: str | None = None
    fields: list[dict[str, str]] | None = None


class BatchPartialOut(BaseModel):
    status: str = "queued"
    accepted: int
    rejected: int
    results: list[EventResultOut] = Field(description="One per event, in the order sent: an id or an error.")


class ErrorOut(BaseModel):
    """Every error. `fields` lists the offending fields of a 422; other keys may add detail."""

    model_config = ConfigDict(extra="allow")

    error: str
    fields: list[FieldErrorOut] | None = None
