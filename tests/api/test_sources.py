from api.sources import extract_sources


def test_markdown_links_become_sources_with_their_description() -> None:
    text = "Try [Boots A](https://a.example/boots) - light and dry.\nAlso [B](https://b.example)."

    sources = extract_sources(text)

    assert [(s.title, s.url, s.content) for s in sources] == [
        ("Boots A", "https://a.example/boots", "light and dry"),
        ("B", "https://b.example", ""),
    ]


def test_links_on_one_line_are_each_a_source() -> None:
    text = "See [A](https://a.example/) and [B](https://b.example/): both good."

    sources = extract_sources(text)

    assert [(s.title, s.url, s.content) for s in sources] == [
        ("A", "https://a.example/", "and"),
        ("B", "https://b.example/", "both good"),
    ]


def test_bare_urls_are_kept_once_without_trailing_punctuation() -> None:
    sources = extract_sources("See https://x.example/a, and https://x.example/a. [X](https://x.example/a)")

    assert [s.url for s in sources] == ["https://x.example/a"]
    assert sources[0].title == "X"


def test_no_links_no_sources() -> None:
    assert extract_sources("Just text, no links.") == []
