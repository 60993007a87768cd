"""RFC 5256 §2.1 base subject, used by SORT (SUBJECT) and THREAD (ORDEREDSUBJECT, REFERENCES)."""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
# subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
# subj-leader = (*subj-blob subj-refwd) / WSP ;  subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s)", re.IGNORECASE)
_LEADING_BLOB = re.compile(_BLOB)
# subj-fwd = subj-fwd-hdr subject subj-fwd-trl ; subj-fwd-hdr = "[fwd:" ; subj-fwd-trl = "]"
_FWD = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


def _strip_trailers(text: str) -> str:
    """subj-trailer = "(fwd)" / WSP, removed repeatedly from the end (linear time)."""
    while True:
        text = text.rstrip()
        if text[-5:].lower() != "(fwd)":
            return text
        text = text[:-5]


def base_subject(subject: str) -> str:
    """The base subject of an already RFC 2047-decoded subject (case kept; SORT compares
    it with i;unicode-casemap)."""
    text = _WS.sub(" ", subject)  # step 1: tabs, continuations, runs of spaces
    for _ in range(100):  # bounded: each round strips at least one character
        text = _strip_trailers(text)  # step 2
        while True:  # steps 3-5
            before = text
            m = _LEADER.match(text)
            while m and m.end() > 0:
                text = text[m.end() :]
                m = _LEADER.match(text)
            m = _LEADING_BLOB.match(text)
            if m and text[m.end() :].strip():
                text = text[m.end() :]
            if text == before:
                break
        m = _FWD.match(text)  # step 6
        if not m:
            break
        text = m.group(1)
    return text
