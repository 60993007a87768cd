"""``courriel explain``: what a raw message is made of, for learners and for debugging.

:func:`explain` is pure (bytes in, plain data out, never raises): the MIME tree from
:func:`courriel.mime.parse_message` (type, charset, transfer encoding, size, lines, file
name, disposition, each part's number as IMAP counts them, RFC 9051 §6.4.5), the message's
main headers decoded (RFC 2047), the parser's defects, and its Authentication-Results
fields split into method results (RFC 8601 §2.2). :func:`render` draws it with rich.
"""

from __future__ import annotations

import re
from typing import Any

from courriel.mime import BodyPart, decode_header_value, parse_message, unfold

SUMMARY_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


def _node(part: BodyPart, number: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "part": number or "TEXT",
        "type": part.mime_type,
        "size": part.size,
    }
    if not part.is_multipart:
        node["encoding"] = part.encoding_lower
    charset = part.param("charset")
    if charset:
        node["charset"] = charset.lower()
    if part.lines is not None:
        node["lines"] = part.lines
    if part.filename:
        node["filename"] = part.filename
    if part.disposition:
        node["disposition"] = part.disposition_lower
    boundary = part.param("boundary")
    if boundary:
        node["boundary"] = boundary
    children: list[dict[str, Any]] = []
    if part.is_multipart:
        for i, child in enumerate(part.children, 1):
            children.append(_node(child, f"{number}.{i}" if number else str(i)))
    elif part.message is not None:
        inner = part.message
        env = part.envelope
        if env is not None and env.subject:
            node["subject"] = decode_header_value(env.subject)
        if inner.is_multipart:
            for i, child in enumerate(inner.children, 1):
                children.append(_node(child, f"{number}.{i}"))
        else:
            children.append(_node(inner, f"{number}.1"))
    if children:
        node["children"] = children
    return node


_METHOD = re.compile(r"^\s*([A-Za-z0-9-]+)\s*=\s*([A-Za-z0-9-]+)(.*)$", re.S)


def parse_authentication_results(value: str) -> dict[str, Any]:
    """One Authentication-Results value: the authserv-id and its method results (RFC 8601)."""
    text = re.sub(r"\([^()]*\)", " ", unfold(value))  # comments
    pieces = [p.strip() for p in text.split(";")]
    authserv = pieces[0].split()[0] if pieces and pieces[0] else ""
    results = []
    for piece in pieces[1:]:
        m = _METHOD.match(piece)
        if not m:
            continue
        props = dict(re.findall(r"([A-Za-z0-9-]+\.[A-Za-z0-9_-]+)=(\"[^\"]*\"|\S+)", m.group(3)))
        reason = re.search(r"reason=(\"[^\"]*\"|\S+)", m.group(3))
        entry: dict[str, Any] = {"method": m.group(1).lower(), "result": m.group(2).lower(), "properties": props}
        if reason:
            entry["reason"] = reason.group(1).strip('"')
        results.append(entry)
    return {"authserv_id": authserv, "results": results}


def explain(data: bytes) -> dict[str, Any]:
    parsed = parse_message(data)
    headers: dict[str, str] = {}
    for name, raw in parsed.headers:
        title = next((h for h in SUMMARY_HEADERS if h.lower() == name.lower()), None)
        if title and title not in headers:
            headers[title] = decode_header_value(raw).strip()
    auth = [parse_authentication_results(raw) for name, raw in parsed.headers
            if name.lower() == "authentication-results"]  # fmt: skip
    received = sum(1 for name, _ in parsed.headers if name.lower() == "received")
    dkim = sum(1 for name, _ in parsed.headers if name.lower() == "dkim-signature")
    return {
        "size": parsed.size,
        "headers": headers,
        "header_fields": len(parsed.headers),
        "received": received,
        "dkim_signatures": dkim,
        "tree": _node(parsed.body, ""),
        "defects": list(parsed.defects),
        "authentication_results": auth,
    }


def _label(node: dict[str, Any]) -> str:
    bits = [f"[bold]{node['type']}[/]"]
    if "charset" in node:
        bits.append(f"charset={node['charset']}")
    if "encoding" in node:
        bits.append(node["encoding"])
    bits.append(f"{node['size']} octets")
    if "lines" in node:
        bits.append(f"{node['lines']} lines")
    if "disposition" in node:
        bits.append(node["disposition"])
    if "filename" in node:
        bits.append(f'[yellow]"{node["filename"]}"[/]')
    if "subject" in node:
        bits.append(f'subject "{node["subject"]}"')
    return f"[dim]{node['part']}[/] " + ", ".join(bits)


def render(info: dict[str, Any], console: Any, verified: list[dict[str, Any]] | None = None) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    console.print(f"[bold]Message[/] {info['size']} octets, {info['header_fields']} header fields, "
                  f"{info['received']} Received, {info['dkim_signatures']} DKIM-Signature")  # fmt: skip
    for name, value in info["headers"].items():
        console.print(f"  [cyan]{name}:[/] {escape(value)}")

    def add(tree: Any, node: dict[str, Any]) -> None:
        branch = tree.add(_label({**node, "filename": escape(node["filename"])} if "filename" in node else node))
        for child in node.get("children", []):
            add(branch, child)

    root = Tree("[bold]MIME structure[/]")
    add(root, info["tree"])
    console.print(root)
    if info["defects"]:
        console.print("[bold red]Defects[/]")
        for d in info["defects"]:
            console.print(f"  [red]- {escape(d)}[/]")
    console.print("[bold]Authentication-Results[/]" + ("" if info["authentication_results"] else ": none"))
    for ar in info["authentication_results"]:
        console.print(f"  by [cyan]{escape(ar['authserv_id'])}[/]")
        for r in ar["results"]:
            colour = "green" if r["result"] == "pass" else "red" if r["result"] in ("fail", "permerror") else "yellow"
            props = " ".join(f"{k}={v}" for k, v in r["properties"].items())
            console.print(f"    {r['method']}=[{colour}]{r['result']}[/] {escape(props)}")
    if verified is not None:
        console.print("[bold]Verified now[/]")
        for r in verified:
            colour = "green" if r["result"] == "pass" else "red" if r["result"] in ("fail", "permerror") else "yellow"
            detail = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("method", "result") and v)
            console.print(f"    {r['method']}=[{colour}]{r['result']}[/] {escape(detail)}")
