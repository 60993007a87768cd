"""What a message body becomes in the browser: sanitised HTML and escaped, linked plain text.

Pure functions, no I/O. HTML goes through nh3 (the ammonia sanitiser) with a strict
allow-list: no script, style element, form, frame, object, embed, meta, link, base or SVG
survives; event handlers and unknown attributes are dropped; links keep only http, https
and mailto and open in a new browsing context without referrer; inline CSS keeps a list of
presentational properties and loses any declaration that could fetch (``url(``,
``image-set(``, ``@import``, ``expression(``, escapes). Images: ``cid:`` references become
the message's own part URLs, ``data:`` raster images stay, remote images are replaced by a
local placeholder unless the reader allowed them for this message. The result is shown in
a sandboxed frame under its own Content-Security-Policy (see :mod:`courriel.webmail.reader`),
so a sanitiser miss still cannot run script or reach another host.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import nh3
from markupsafe import Markup

#: What a blocked remote image shows instead (a same-origin static file).
PLACEHOLDER = "/static/remote-image.svg"

TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote",
        "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn",
        "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins", "kbd", "li", "mark", "nav", "ol",
        "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span", "strike",
        "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time",
        "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
#: Elements removed with their content (the rest of an unknown element's text is kept).
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "title", "head", "noscript", "template", "iframe", "object", "embed", "svg", "math",
     "textarea", "select", "button", "audio", "video", "canvas", "applet", "frameset", "noembed", "noframes"}
)  # fmt: skip
_COMMON = {"style", "title", "dir", "lang", "align", "valign", "width", "height"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON,
    "a": {"href"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap", "scope"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "hr": {"size", "noshade"},
    "time": {"datetime"},
}
#: CSS properties kept in style attributes; none of them takes a URL in its usual forms,
#: and declarations mentioning one are dropped anyway (:func:`_safe_style`).
STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
        "font-variant", "text-align", "text-decoration", "text-transform", "text-indent", "line-height",
        "letter-spacing", "word-spacing", "white-space", "vertical-align", "direction", "margin",
        "margin-top", "margin-right", "margin-bottom", "margin-left", "padding", "padding-top",
        "padding-right", "padding-bottom", "padding-left", "border", "border-top", "border-right",
        "border-bottom", "border-left", "border-color", "border-style", "border-width", "border-radius",
        "border-collapse", "border-spacing", "width", "height", "max-width", "min-width", "max-height",
        "min-height", "display", "float", "clear", "list-style-type", "table-layout", "overflow-wrap",
        "word-break",
    }
)  # fmt: skip
_STYLE_DANGER = re.compile(r"url\s*\(|image-set|image\s*\(|@import|expression|javascript:|behavior|\\|/\*", re.I)
_RASTER_DATA = re.compile(r"data:image/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
_LINK_SCHEMES = ("http:", "https:", "mailto:")


@dataclass
class Rendered:
    """Sanitised markup and what was done to it."""

    html: str
    blocked_images: int = 0
    cids: set[str] = field(default_factory=set)  # Content-IDs that were referenced


def _safe_style(value: str) -> str | None:
    """Drop each declaration that could fetch or hide something from the filter."""
    if "\\" in value or "/*" in value:
        return None
    kept = [d for d in value.split(";") if d.strip() and not _STYLE_DANGER.search(d)]
    return ";".join(kept) or None


def sanitize_html(markup: str, cid_url: Callable[[str], str | None], allow_remote: bool) -> Rendered:
    """Clean an HTML body. ``cid_url`` maps a Content-ID (no brackets) to the URL of that
    part, or None when the message has no such part; ``allow_remote`` keeps https images."""
    out = Rendered("")

    def attribute(tag: str, name: str, value: str) -> str | None:
        if name == "style":
            return _safe_style(value)
        if tag == "a" and name == "href":
            return value if value.strip().lower().startswith(_LINK_SCHEMES) else None
        if tag == "img" and name == "src":
            return _image(value.strip())
        return value

    def _image(src: str) -> str | None:
        low = src.lower()
        if low.startswith("cid:"):
            cid = src[4:].strip().strip("<>")
            out.cids.add(cid)
            return cid_url(cid) or PLACEHOLDER
        if low.startswith("data:"):
            return src if _RASTER_DATA.match(src) else None
        if low.startswith("https:") and allow_remote:
            return src
        if low.startswith(("http:", "https:", "//")):
            out.blocked_images += 1
            return PLACEHOLDER
        return None  # relative or other schemes: nothing to load

    out.html = nh3.clean(
        markup,
        tags=set(TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        attribute_filter=attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto", "cid", "data"},
        filter_style_properties=set(STYLE_PROPERTIES),
        url_relative="pass_through",  # every URL attribute kept is checked by attribute()
    )
    return out


_URL = re.compile(r"\b(?:https?://|mailto:)[^\s<>\"'`]+", re.I)
_TRAILING = ".,;:!?)]}'\""


def linkify_text(text: str) -> Markup:
    """Plain text escaped for HTML, with http(s) and mailto URLs made into safe links."""
    parts: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0)
        trimmed = url.rstrip(_TRAILING)
        end = m.start() + len(trimmed)
        parts.append(html.escape(text[pos : m.start()]))
        href = html.escape(trimmed, quote=True)
        parts.append(f'<a href="{href}" rel="noopener noreferrer" target="_blank">{href}</a>')
        pos = end
    parts.append(html.escape(text[pos:]))
    return Markup("".join(parts))


def quote_text(text: str) -> str:
    """A reply's quotation: every line prefixed with "> " (RFC 3676 style)."""
    lines = text.rstrip("\n").split("\n")
    return "\n".join(">" + line if line.startswith(">") else "> " + line for line in lines)
