"""Turns the links an LLM answer recommends into `source` entries."""

import re

from shared.records import Source

# [title](https://url) then, on the same line, an optional description up to the next link (which is a
# source of its own: a greedy description would swallow it, and finditer would never see it).
_LINK = r"\[(?P<title>[^\]\n]{1,300})\]\((?P<url>https?://[^\s)]{1,2000})\)"
_MARKDOWN_LINK = re.compile(_LINK + r"(?P<rest>(?:(?!\[[^\]\n]{1,300}\]\(https?://)[^\n])*)")
_BARE_URL = re.compile(r"(?<![(\[])\bhttps?://[^\s)\]>\"']{1,2000}")


def extract_sources(text: str, limit: int = 20) -> list[Source]:
    """Markdown links first, then bare URLs; each URL once, in order of appearance."""
    sources: dict[str, Source] = {}
    for match in _MARKDOWN_LINK.finditer(text):
        url = match["url"]
        content = match["rest"].strip(" -–—:;,.").strip()
        sources.setdefault(url, Source(title=match["title"].strip(), url=url, content=content))
    for match in _BARE_URL.finditer(text):
        url = match[0].rstrip(".,;:")
        sources.setdefault(url, Source(title=url, url=url, content=""))
    return list(sources.values())[:limit]
