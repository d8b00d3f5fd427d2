"""Hostile and odd inputs for the ingest endpoints, each with the answer it must get.

Run by tests/api/test_hostile_corpus.py: an accepted input must be stored and exported exactly as
sent (same keys, key order, value types and float signs); a refused one must get a JSON error that
says why, and the queue must still take the next valid event.

Most inputs come from classes of bugs that ingestion pipelines (analytics SDKs and collectors,
MongoDB drivers, JSON parsers) have hit in public: dotted and `$` keys in event properties,
prototype-polluting keys, NUL bytes, lone surrogates, numbers JSON cannot carry, BOMs and UTF-16
bodies, duplicate keys, deep nesting, and bodies sized right at the limits.
"""

import gzip
import json
import dataclasses
from dataclasses import dataclass
from typing import Any

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}
BASE = {"user_id": "corpus-user", "event_type": "click"}
EVENT_LIMIT = 64 * 1024  # MAX_EVENT_BYTES default
DEPTH_LIMIT = 32  # MAX_EXTRA_DEPTH default
KEY_LIMIT = 1000  # MAX_EXTRA_KEYS default


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: int
    why: str
    error: str = ""  # a fragment the error message must contain
    field: str | None = None  # a 422 must name this field
    sent: dict[str, Any] | None = None  # accepted: every field stored and exported as this
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))
    path: str = "/log_event"


def utf8(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def accepted(name: str, fields: dict[str, Any], why: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None, path: str = "/log_event") -> Case:
    sent = {**BASE, **fields} if path == "/log_event" else fields
    return Case(name, utf8(sent) if body is None else body, 200 if path == "/query" else 202, why,
                sent=sent, headers=headers or dict(JSON), path=path)


def refused(name: str, body: bytes | dict[str, Any], status: int, error: str, why: str, *,
            field: str | None = None, headers: dict[str, str] | None = None, path: str = "/log_event") -> Case:
    raw = body if isinstance(body, bytes) else utf8(body)
    return Case(name, raw, status, why, error=error, field=field, headers=headers or dict(JSON), path=path)


def nested(depth: int) -> dict[str, Any]:
    """`depth` levels of objects, the outermost counting as level 1."""
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


def _padded_to(size: int) -> dict[str, Any]:
    """An event whose UTF-8 JSON is exactly `size` bytes."""
    event = {**BASE, "extra_data": {"blob": ""}}
    event["extra_data"]["blob"] = "x" * (size - len(utf8(event)))
    return event


_UNICODE = {
    "emoji_zwj": "👩🏽‍🔬 🏳️‍🌈 👨‍👩‍👧‍👦",
    "rtl_arabic": "مرحبا بالعالم",
    "rtl_hebrew_mixed": "שלום abc 123 עולם",
    "bidi_override": "\u202eevil\u202c",
    "combining": "e\u0301 n\u0303 Z\u0351\u0352\u0353",
    "zalgo": "Z̸̢̛͖̰̈́a̶̡̛͉̓l̵̨̰̈́g̷̨̈́o̴̧̓",
    "cjk": "日本語 中文 한국어",
    "astral_math": "𝕳𝖊𝖑𝖑𝖔 𝟘𝟙",
    "line_separators": "a\u2028b\u2029c",
    "zero_width": "a\u200bb\u200dc\ufeffd",
    "noncharacters": "\ufffe\uffff\U0010ffff",
    "replacement_char": "\ufffd",
    "control_chars": "\x01\x07\x1b[31m\x7f",
    "newlines_tabs": "line1\nline2\r\n\ttabbed",
}

ACCEPTED = [
    accepted("seed event", {"session_id": "session_abc", "query": "best hiking boots",
                            "target_url": "https://example.com/boots", "page_url": "https://app.example.com/chat",
                            "extra_data": {"position": 2}}, "the seed's own example"),
    accepted("unicode values", {"extra_data": _UNICODE}, "emoji, RTL and combining marks must round-trip"),
    accepted("unicode keys", {"extra_data": {k + "🔑": v for k, v in _UNICODE.items()}, "ключ": "значение"},
             "non-ASCII property names (localised front ends)"),
    accepted("unicode ids", {"user_id": "ü-ñ-日本-👤", "session_id": "سشن", "event_type": "ñ click ✓"},
             "ids are opaque strings"),
    accepted("dotted keys", {"extra_data": {"a.b": 1, "x": {"c.d.e": [1, {"f.g": 2}]}, ".": 0, "...": 1}},
             "analytics SDKs send dotted property names; MongoDB < 5.0 refused them"),
    accepted("dotted top-level key", {"page.section": "pricing", "utm.source": "mail"},
             "unknown top-level fields are kept as sent"),
    accepted("dollar inside keys", {"extra_data": {"price$": 1, "a$b": 2, "US$ amount": 3}},
             "only a leading $ is refused"),
    accepted("prototype keys", {"__proto__": {"admin": True}, "constructor": {"prototype": {"x": 1}},
                                "extra_data": {"__proto__": None, "hasOwnProperty": 1}},
             "prototype pollution payloads sent to JavaScript collectors"),
    accepted("python and pydantic names", {"kind": "x", "collection": "y", "model_config": 1, "__class__": 2,
                                           "__dict__": 3, "self": 4, "model_dump": 5, "_private": 6},
             "names that collide with model attributes"),
    accepted("mongo-looking strings", {"extra_data": {"q": '{"$gt": ""}', "oid": "ObjectId('5f1d7f')",
                                                      "date": "ISODate('2024-01-01')", "where": "$where"}},
             "operator-shaped text is only text"),
    accepted("dates stay strings", {"client_timestamp": "2024-02-29T23:59:59.999Z",
                                    "extra_data": {"when": "2024-01-01T00:00:00+05:30"}},
             "no silent conversion to BSON dates"),
    accepted("injection strings", {"extra_data": {"xss": "<script>alert(1)</script>", "sql": "'; DROP TABLE x;--",
                                                  "log4j": "${jndi:ldap://x/a}", "fmt": "%s%n%x", "path": "../../etc/passwd"}},
             "stored as text, never interpreted"),
    accepted("NUL inside a string value", {"extra_data": {"v": "a\u0000b"}, "session_id": "s\u0000"},
             "BSON strings may hold NUL; only keys may not"),
    accepted("whitespace and empty keys", {"extra_data": {"": 1, " ": 2, " padded ": 3, "new\nline": 4, "tab\t": 5}},
             "MongoDB stores empty and whitespace field names"),
    accepted("numbers exactly", {"extra_data": {"zero": 0, "neg_zero_float": -0.0, "one_float": 1.0, "one_int": 1,
                                                "e": 1e2, "tiny": 5e-324, "max_double": 1.7976931348623157e308,
                                                "int64_max": 2**63 - 1, "int64_min": -(2**63), "above_2_53": 2**53 + 1,
                                                "neg": -42, "pi": 3.141592653589793}},
             "int vs float, -0.0, int64 edges and denormals keep type and value"),
    accepted("negative zero integer", {}, "-0 is the integer 0 in JSON",
             body=b'{"user_id":"corpus-user","event_type":"click","extra_data":{"n":-0}}'),
    accepted("mixed arrays", {"extra_data": {"a": [1, "two", 3.0, None, True, [], {}, [[[]]]], "empty": []}},
             "arrays of mixed types"),
    accepted("null and empty objects", {"extra_data": {}, "session_id": None, "meta": {}}, "explicit nulls are kept"),
    accepted("extra_data null", {"extra_data": None}, "explicit null"),
    accepted("nesting at the limit", {"extra_data": nested(DEPTH_LIMIT)}, "MAX_EXTRA_DEPTH levels are fine"),
    accepted("keys at the limit", {"extra_data": {f"k{i}": i for i in range(KEY_LIMIT - 3)}},
             "MAX_EXTRA_KEYS keys in the whole body are fine"),
    accepted("strings at their limits", {"user_id": "u" * 256, "session_id": "s" * 256, "event_type": "e" * 64,
                                         "query": "q" * 8000, "target_url": "https://x.example/" + "a" * 8174,
                                         "page_url": "https://y.example/" + "b" * 8174, "event_id": "i" * 256},
             "every documented string limit, exactly"),
    accepted("body exactly at the size limit", _padded_to(EVENT_LIMIT), "MAX_EVENT_BYTES bytes are fine"),
    accepted("UTF-8 BOM", {"extra_data": {"bom": True}}, "RFC 8259 lets parsers ignore a BOM; Windows tools add one",
             body=b"\xef\xbb\xbf" + utf8({**BASE, "extra_data": {"bom": True}})),
    accepted("UTF-16 LE body", {"extra_data": {"enc": "utf-16 ✓"}}, "detected like json.loads does",
             body=json.dumps({**BASE, "extra_data": {"enc": "utf-16 ✓"}}, ensure_ascii=False).encode("utf-16")),
    accepted("UTF-16 BE body without BOM", {"extra_data": {"enc": "be"}}, "detected from the NUL pattern",
             body=json.dumps({**BASE, "extra_data": {"enc": "be"}}).encode("utf-16-be")),
    accepted("ASCII escapes", {"extra_data": {"esc": "é😀\u2028"}}, "\\u escapes with surrogate pairs",
             body=json.dumps({**BASE, "extra_data": {"esc": "é😀\u2028"}}, ensure_ascii=True).encode()),
    accepted("pretty printed with CRLF", {"extra_data": {"a": [1, 2]}}, "whitespace is not content",
             body=json.dumps({**BASE, "extra_data": {"a": [1, 2]}}, indent="\t").replace("\n", "\r\n").encode()),
    accepted("text/plain beacon", {"extra_data": {"beacon": True}}, "navigator.sendBeacon sends text/plain",
             headers=TEXT),
    accepted("no content type", {"extra_data": {"ct": None}}, "some beacon Blobs carry no type", headers={}),
    accepted("json with charset and +json", {"extra_data": {"ct": "vnd"}}, "JSON:API clients",
             headers={"Content-Type": "application/vnd.api+json; charset=utf-8"}),
    accepted("gzip body", {"extra_data": {"gz": "✓" * 100}}, "compressed beacons",
             body=gzip.compress(utf8({**BASE, "extra_data": {"gz": "✓" * 100}})),
             headers={**JSON, "Content-Encoding": "gzip"}),
    accepted("client timestamps as numbers", {"client_timestamp": 1_700_000_000_123, "extra_data": {"t": 1.5}},
             "epoch milliseconds"),
    accepted("query with unicode", {"user_id": "q-user", "session_id": "s", "query": "¿Qué es 日本? 👩🏽‍🔬 e\u0301",
                                    "lang": "mixed"},
             "the /query record keeps the text as sent", path="/query"),
]

_TOO_DEEP_OBJECTS = b'{"user_id":"u","event_type":"c","extra_data":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
_TOO_DEEP_ARRAYS = b'{"user_id":"u","event_type":"c","extra_data":{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}}"
_TRUNCATED_GZIP = gzip.compress(utf8(BASE) * 50)[:-12]

REFUSED = [
    # Not a JSON object at all
    refused("empty body", b"", 400, "empty", "sendBeacon with no data"),
    refused("whitespace body", b" \r\n\t ", 400, "empty", "an empty template"),
    refused("null", b"null", 422, "JSON object", "JSON.stringify(undefined ?? null)"),
    refused("top-level array", b"[]", 422, "JSON object", "a batch sent to the single-event endpoint"),
    refused("array of events", utf8([BASE, BASE]), 422, "JSON object", "a batch sent to the single-event endpoint"),
    refused("top-level string", b'"click"', 422, "JSON object", "a stringified event stringified twice"),
    refused("top-level number", b"42", 422, "JSON object", "a bare number"),
    refused("top-level true", b"true", 422, "JSON object", "a bare literal"),
    refused("plain text", b"hello", 400, "not valid JSON", "a form sent as text"),
    refused("form encoded as text", b"user_id=u&event_type=c", 400, "not valid JSON", "URLSearchParams body",
            headers=TEXT),
    refused("single quotes", b"{'user_id': 'u', 'event_type': 'c'}", 400, "not valid JSON", "a Python repr"),
    refused("trailing comma", b'{"user_id": "u", "event_type": "c",}', 400, "not valid JSON", "JSON5 habits"),
    refused("comments", b'{"user_id": "u", /* c */ "event_type": "c"}', 400, "not valid JSON", "JSONC habits"),
    refused("unterminated", b'{"user_id": "u", "event_type": "c"', 400, "not valid JSON", "a truncated beacon"),
    refused("two objects", b'{"user_id":"u","event_type":"c"}{"user_id":"u","event_type":"c"}', 400,
            "not valid JSON", "NDJSON without newlines"),
    refused("NDJSON", utf8(BASE) + b"\n" + utf8(BASE), 400, "not valid JSON", "NDJSON to a JSON endpoint"),
    refused("NUL byte outside strings", b'{"user_id":"u",\x00"event_type":"c"}', 400, "not valid",
            "binary garbage"),
    # Bytes that are not text
    refused("invalid UTF-8", b'{"user_id":"\xff\xfe","event_type":"c"}', 400, "UTF-8", "Latin-1 sent as UTF-8"),
    refused("overlong UTF-8", b'{"user_id":"\xc0\xaf","event_type":"c"}', 400, "UTF-8", "overlong '/' encoding"),
    refused("UTF-8 encoded surrogate", b'{"user_id":"\xed\xa0\x80","event_type":"c"}', 400, "UTF-8", "CESU-8"),
    refused("lone surrogate escape", b'{"user_id":"u","event_type":"c","extra_data":{"s":"\\ud83d"}}', 422,
            "surrogate", "a JS string cut in the middle of an emoji", field="extra_data.s"),
    refused("lone low surrogate in key", b'{"user_id":"u","event_type":"c","extra_data":{"\\udc00":1}}', 422,
            "surrogate", "a cut emoji in a property name", field="extra_data.\\udc00"),
    refused("lone surrogate in user_id", b'{"user_id":"a\\udfff","event_type":"c"}', 422, "surrogate",
            "truncated ids", field="user_id"),
    # Keys MongoDB cannot store, or that would be misread
    refused("NUL in a key", b'{"user_id":"u","event_type":"c","extra_data":{"a\\u0000b":1}}', 422, "NUL",
            "BSON keys are C strings", field="extra_data.a\x00b"),
    refused("dollar key nested", {**BASE, "extra_data": {"$where": "sleep(1000)"}}, 422, "'$'",
            "operator injection attempts", field="extra_data.$where"),
    refused("dollar key top-level", {**BASE, "$set": {"admin": True}}, 422, "'$'", "update operator injection",
            field="$set"),
    refused("dollar key in array", {**BASE, "extra_data": {"a": [{"$gt": ""}]}}, 422, "'$'", "operators in arrays",
            field="extra_data.a[0].$gt"),
    refused("extended JSON date", {**BASE, "extra_data": {"d": {"$date": "2024-01-01"}}}, 422, "'$'",
            "would read back as a BSON date in tools", field="extra_data.d.$date"),
    refused("duplicate top-level key", b'{"user_id":"a","user_id":"b","event_type":"c"}', 422, "repeats",
            "parsers differ on which value wins (RFC 8259 section 4)", field="body"),
    refused("duplicate nested key", b'{"user_id":"a","event_type":"c","extra_data":{"k":1,"k":2}}', 422, "repeats",
            "a hand-built JSON string", field="extra_data"),
    # Numbers JSON cannot carry or MongoDB cannot store
    refused("NaN", b'{"user_id":"u","event_type":"c","extra_data":{"n":NaN}}', 422, "NaN",
            "Python json.dumps writes it", field="extra_data.n"),
    refused("Infinity", b'{"user_id":"u","event_type":"c","extra_data":{"n":Infinity}}', 422, "Infinity",
            "division by zero in the front end", field="extra_data.n"),
    refused("-Infinity", b'{"user_id":"u","event_type":"c","extra_data":{"n":[1,-Infinity]}}', 422, "Infinity",
            "division by zero", field="extra_data.n[1]"),
    refused("1e309", b'{"user_id":"u","event_type":"c","extra_data":{"n":1e309}}', 422, "64-bit float",
            "overflows a double to inf", field="extra_data.n"),
    refused("-1e400", b'{"user_id":"u","event_type":"c","extra_data":{"n":-1e400}}', 422, "64-bit float",
            "overflows a double to -inf", field="extra_data.n"),
    refused("2**63", {**BASE, "extra_data": {"n": 2**63}}, 422, "64-bit", "int64 overflow", field="extra_data.n"),
    refused("-(2**63)-1", {**BASE, "extra_data": {"n": -(2**63) - 1}}, 422, "64-bit", "int64 underflow",
            field="extra_data.n"),
    refused("5000-digit integer", b'{"user_id":"u","event_type":"c","extra_data":{"n":' + b"9" * 5000 + b"}}", 422,
            "64-bit", "CPU-heavy int parsing (CVE-2020-10735)", field="extra_data.n"),
    # Wrong types and empty values
    refused("user_id number", {**BASE, "user_id": 123}, 422, "valid string", "numeric ids", field="user_id"),
    refused("user_id null", {**BASE, "user_id": None}, 422, "valid string", "anonymous users", field="user_id"),
    refused("user_id object", {**BASE, "user_id": {"id": 1}}, 422, "valid string", "a user object", field="user_id"),
    refused("user_id bool", {**BASE, "user_id": True}, 422, "valid string", "a flag", field="user_id"),
    refused("missing user_id", {"event_type": "c"}, 422, "required", "not logged in", field="user_id"),
    refused("missing event_type", {"user_id": "u"}, 422, "required", "forgotten type", field="event_type"),
    refused("empty user_id", {**BASE, "user_id": ""}, 422, "at least 1 character", "unset variable", field="user_id"),
    refused("empty session_id", {**BASE, "session_id": ""}, 422, "at least 1 character", "unset variable", field="session_id"),
    refused("empty event_type", {**BASE, "event_type": ""}, 422, "at least 1 character", "unset variable", field="event_type"),
    refused("empty query", {**BASE, "query": ""}, 422, "at least 1 character", "no query yet", field="query"),
    refused("empty page_url", {**BASE, "page_url": ""}, 422, "at least 1 character", "about:blank", field="page_url"),
    refused("event_type number", {**BASE, "event_type": 3}, 422, "valid string", "enum index", field="event_type"),
    refused("extra_data array", {**BASE, "extra_data": [1, 2]}, 422, "valid dictionary", "a list of props",
            field="extra_data"),
    refused("extra_data string", {**BASE, "extra_data": '{"a":1}'}, 422, "valid dictionary", "double-encoded props",
            field="extra_data"),
    refused("extra_data number", {**BASE, "extra_data": 0}, 422, "valid dictionary", "a count", field="extra_data"),
    refused("client_timestamp bool", {**BASE, "client_timestamp": True}, 422, "number", "a flag",
            field="client_timestamp"),
    refused("client_timestamp object", {**BASE, "client_timestamp": {"t": 1}}, 422, "number", "a Date object",
            field="client_timestamp"),
    # Fields the server sets
    refused("timestamp sent", {**BASE, "timestamp": "2020-01-01T00:00:00Z"}, 422, "set by the server",
            "Segment-style clients send timestamp", field="timestamp"),
    refused("id sent", {**BASE, "id": "x"}, 422, "set by the server", "would replace the record id", field="id"),
    refused("_id sent", {**BASE, "_id": "x"}, 422, "set by the server", "would replace the MongoDB key", field="_id"),
    refused("type sent", {**BASE, "type": "query"}, 422, "set by the server", "would change the export type",
            field="type"),
    refused("event_time sent", {**BASE, "event_time": "x"}, 422, "set by the server", "computed from client clocks",
            field="event_time"),
    # Limits
    refused("user_id too long", {**BASE, "user_id": "u" * 257}, 422, "at most", "an email list", field="user_id"),
    refused("session_id too long", {**BASE, "session_id": "s" * 257}, 422, "at most", "a JWT", field="session_id"),
    refused("event_type too long", {**BASE, "event_type": "e" * 65}, 422, "at most", "a sentence",
            field="event_type"),
    refused("query too long", {**BASE, "query": "q" * 8001}, 422, "at most", "a pasted document", field="query"),
    refused("url too long", {**BASE, "target_url": "https://x/" + "a" * 8183}, 422, "at most", "a data: URL",
            field="target_url"),
    refused("nesting one past the limit", {**BASE, "extra_data": nested(DEPTH_LIMIT + 1)}, 422, "nested deeper",
            "a serialised DOM tree", field="extra_data" + ".d" * DEPTH_LIMIT),
    refused("100k nested objects", _TOO_DEEP_OBJECTS, 413, "larger than", "recursion bombs"),
    refused("30k nested arrays", _TOO_DEEP_ARRAYS, 400, "nested too deeply", "recursion bombs within the size limit"),
    refused("too many keys", {**BASE, "extra_data": {f"k{i}": i for i in range(KEY_LIMIT)}}, 422, "keys",
            "a whole state object", field="body"),
    refused("body one byte over", _padded_to(EVENT_LIMIT + 1), 413, "larger than 65536 bytes", "just over the cap"),
    refused("body of 2 MiB", utf8(_padded_to(2 * 1024 * 1024)), 413, "larger than", "way over every cap"),
    # Content type and encoding
    refused("form content type", BASE, 415, "Content-Type", "a form post",
            headers={"Content-Type": "application/x-www-form-urlencoded"}),
    refused("multipart", BASE, 415, "Content-Type", "a file upload",
            headers={"Content-Type": "multipart/form-data; boundary=x"}),
    refused("xml", b"<event/>", 415, "Content-Type", "a SOAP client", headers={"Content-Type": "application/xml"}),
    refused("brotli", BASE, 415, "Content-Encoding", "an unsupported encoding",
            headers={**JSON, "Content-Encoding": "br"}),
    refused("gzip header, plain body", BASE, 400, "gzip", "a proxy that removed compression",
            headers={**JSON, "Content-Encoding": "gzip"}),
    refused("truncated gzip", _TRUNCATED_GZIP, 400, "gzip", "a cut connection",
            headers={**JSON, "Content-Encoding": "gzip"}),
    refused("gzip bomb", gzip.compress(b'{"a":"' + b"0" * 20_000_000 + b'"}'), 413, "decompressed",
            "decompression bombs", headers={**JSON, "Content-Encoding": "gzip"}),
    # /query
    refused("query user_id number", {"user_id": 7, "query": "hi"}, 422, "valid string", "numeric ids",
            field="user_id", path="/query"),
    refused("query text empty", {"user_id": "u", "query": ""}, 422, "at least 1 character", "an empty input box",
            field="query", path="/query"),
    refused("query too long", {"user_id": "u", "query": "q" * 8001}, 422, "at most", "a pasted book",
            field="query", path="/query"),
    refused("query response sent", {"user_id": "u", "query": "q", "response": "fake"}, 422, "set by the server",
            "a client forging the answer", field="response", path="/query"),
    refused("query NaN", b'{"user_id":"u","query":"q","n":NaN}', 422, "NaN", "invalid JSON", field="n",
            path="/query"),
]
