"""courriel.webmail.sanitize: tables of hostile and ordinary markup, in and out."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from courriel.webmail.sanitize import PLACEHOLDER, linkify_text, quote_text, sanitize_html


def cid(c: str) -> str | None:
    return f"/part/{c}" if c == "logo@x" else None


CLEAN = [
    # (input, expected output), remote images blocked
    ("<p>Hello <b>world</b></p>", "<p>Hello <b>world</b></p>"),
    ("<script>alert(1)</script>ok", "ok"),
    ("<SCRIPT SRC=//evil/x.js></SCRIPT>ok", "ok"),
    ('<img src=x onerror="alert(1)">', "<img>"),
    ('<a href="javascript:alert(1)">x</a>', '<a target="_blank" rel="noopener noreferrer">x</a>'),
    ('<a href="https://example.org/">x</a>', '<a href="https://example.org/" target="_blank" rel="noopener noreferrer">x</a>'),
    ('<a href="mailto:a@b.c">m</a>', '<a href="mailto:a@b.c" target="_blank" rel="noopener noreferrer">m</a>'),
    ('<a href="data:text/html,<script>1</script>">d</a>', '<a target="_blank" rel="noopener noreferrer">d</a>'),
    ('<a href="/relative">r</a>', '<a target="_blank" rel="noopener noreferrer">r</a>'),
    ('<a href="https://x" target="_top" rel="opener">t</a>', '<a href="https://x" target="_blank" rel="noopener noreferrer">t</a>'),
    ('<img src="cid:logo@x">', '<img src="/part/logo@x">'),
    ('<img src="cid:missing@x">', f'<img src="{PLACEHOLDER}">'),
    ('<img src="http://evil.example/p.gif">', f'<img src="{PLACEHOLDER}">'),
    ('<img src="https://evil.example/p.gif">', f'<img src="{PLACEHOLDER}">'),
    ('<img src="//evil.example/p.gif">', f'<img src="{PLACEHOLDER}">'),
    ('<img src="data:image/png;base64,iVBORw0KGgo=">', '<img src="data:image/png;base64,iVBORw0KGgo=">'),
    ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', "<img>"),
    ('<img srcset="https://evil/x 2x">', "<img>"),
    ('<p style="color: red; background: url(https://evil/x)">s</p>', '<p style="color:red">s</p>'),
    ('<p style="background-image: url(x)">s</p>', "<p>s</p>"),
    ('<p style="width: expression(alert(1))">s</p>', "<p>s</p>"),
    ('<p style="background: u\\rl(x)">s</p>', "<p>s</p>"),
    ('<p style="color:red /* */">s</p>', "<p>s</p>"),
    ("<style>@import url(x); p{color:red}</style><p>s</p>", "<p>s</p>"),
    ('<form action="https://evil"><input name="a"><button>go</button></form>', ""),
    ('<meta http-equiv="refresh" content="0;url=https://evil">', ""),
    ('<base href="https://evil/">', ""),
    ('<link rel="stylesheet" href="https://evil/x.css">', ""),
    ('<iframe src="https://evil"></iframe>x', "x"),
    ('<object data="https://evil"></object><embed src="https://evil">x', "x"),
    ("<svg><script>alert(1)</script><image href=x /></svg>x", "x"),
    ('<math><maction xlink:href="javascript:1">m</maction></math>x', "x"),
    ('<table background="https://evil/bg"><tr><td>c</td></tr></table>', "<table><tbody><tr><td>c</td></tr></tbody></table>"),
    ("<!-- <img src=x onerror=alert(1)> -->ok", "ok"),
    ('<div id="x" class="y" data-z="1">d</div>', "<div>d</div>"),
    ('<font color="red" face="serif">f</font>', '<font color="red" face="serif">f</font>'),
]


class _Canonical(HTMLParser):
    """Markup re-serialised with attributes sorted (their order is not part of the contract)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(f"<{tag}" + "".join(f' {k}="{v}"' for k, v in sorted(attrs, key=lambda a: a[0])) + ">")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")


def canonical(markup: str) -> str:
    parser = _Canonical()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out)


@pytest.mark.parametrize(("markup", "expected"), CLEAN)
def test_sanitize(markup: str, expected: str) -> None:
    assert canonical(sanitize_html(markup, cid, allow_remote=False).html) == canonical(expected)


def test_remote_images_counted_and_allowed_on_request() -> None:
    markup = '<img src="https://a.example/1.png"><img src="http://b.example/2.png"><img src="cid:logo@x">'
    blocked = sanitize_html(markup, cid, allow_remote=False)
    assert blocked.blocked_images == 2 and blocked.cids == {"logo@x"}
    allowed = sanitize_html(markup, cid, allow_remote=True)
    assert '<img src="https://a.example/1.png">' in allowed.html
    assert "http://b.example" not in allowed.html  # plain http stays blocked (and the CSP allows only https:)
    assert allowed.blocked_images == 1


LINKS = [
    ("plain text", "plain text"),
    ("<b>not markup</b>", "&lt;b&gt;not markup&lt;/b&gt;"),
    ("see https://example.org/a?b=1&c=2.", 'see <a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer" target="_blank">https://example.org/a?b=1&amp;c=2</a>.'),
    ("(http://x.example/)", '(<a href="http://x.example/" rel="noopener noreferrer" target="_blank">http://x.example/</a>)'),
    ('https://e.example/"onmouseover="x', '<a href="https://e.example/" rel="noopener noreferrer" target="_blank">https://e.example/</a>&quot;onmouseover=&quot;x'),
    ("javascript:alert(1)", "javascript:alert(1)"),
    ("mailto:a@b.example", '<a href="mailto:a@b.example" rel="noopener noreferrer" target="_blank">mailto:a@b.example</a>'),
]


@pytest.mark.parametrize(("text", "expected"), LINKS)
def test_linkify(text: str, expected: str) -> None:
    assert str(linkify_text(text)) == expected


def test_quote_text() -> None:
    assert quote_text("a\n> b\n\nc\n") == "> a\n>> b\n> \n> c"
