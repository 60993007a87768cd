"""The Sieve lexer, parser and validator: tables of scripts, then fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.sieve.grammar import SieveSyntaxError, Tag, parse, tokenize
from courriel.sieve.validate import compile_script

VALID = [
    'keep;',
    '# comment\r\nkeep; /* block\r\ncomment */ discard;',
    'require "fileinto"; fileinto "Work";',
    'require ["fileinto", "copy"]; fileinto :copy "Work";',
    'if header :contains "Subject" "x" { discard; } elsif exists "X-A" { keep; } else { stop; }',
    'if anyof (size :over 1M, not true, allof (false, exists ["a", "b"])) { discard; }',
    'require ["relational", "comparator-i;ascii-numeric"]; if header :value "gt" :comparator "i;ascii-numeric" "X-N" "5" {}',
    'require "relational"; if address :count "ge" ["to", "cc"] "3" { discard; }',
    'require "envelope"; if envelope :domain :is "from" "example.org" { discard; }',
    'require ["imap4flags", "variables"]; setflag "v" "\\\\Seen"; addflag ["$a", "$b"]; if hasflag :contains "v" "Seen" {}',
    'require "vacation"; vacation :days 3 :subject "away" :addresses ["a@x.test"] :handle "h" "Gone.";',
    'require ["vacation"]; vacation :mime text:\r\nContent-Type: text/plain\r\n\r\nAway\r\n..dotted\r\n.\r\n;',
    'require "variables"; set :lower :upperfirst "name" "VALUE"; if string :matches "${name}" "V*" {}',
    'require "body"; if body :content ["text/html", "text"] :contains "x" {}',
    'require "body"; if body :raw :matches "*x*" {}',
    'require ["fileinto", "mailbox"]; if mailboxexists "A" { fileinto :create "B"; }',
    'require ["date", "relational"]; if date :value "ge" :zone "+0100" "date" "year" "2020" {}',
    'require ["date", "index"]; if date :index 2 :last :originalzone "received" "hour" "10" {}',
    'require "date"; if currentdate :is "weekday" "0" {}',
    'require ["reject", "ereject"]; if true { reject "no"; } ereject "never";',
    'require "copy"; redirect :copy "a@example.org";',
]

INVALID = [
    ('fileinto "x";', 1, "needs require"),
    ('keep', 1, "unexpected end"),
    ('if true keep;', 1, "takes no test"),
    ('require "nope";', 1, "unsupported extension"),
    ('keep; require "fileinto";', 1, "require must come before"),
    ('else { keep; }', 1, "without if"),
    ('\r\nfoo;', 2, "unknown command"),
    ('if bogus {}', 1, "unknown test"),
    ('if header :over "a" "b" {}', 1, "unknown tag"),
    ('if header :is :contains "a" "b" {}', 1, "only one of"),
    ('if header "a" {}', 1, "wrong arguments"),
    ('if size 5 {}', 1, "wrong arguments"),
    ('if size :over 1 :under 2 {}', 1, "only one of"),
    ('if header :value "gt" "a" "b" {}', 1, "needs require"),
    ('require "relational"; if header :value "xx" "a" "b" {}', 1, "unknown relation"),
    ('if header :comparator "i;nope" "a" "b" {}', 1, "unknown comparator"),
    ('if header :comparator "i;ascii-numeric" "a" "b" {}', 1, "needs require"),
    ('keep "x";', 1, "wrong arguments"),
    ('"unterminated', 1, "unterminated string"),
    ('/* open', 1, "unterminated comment"),
    ('require "vacation"; vacation text:\r\nno end\r\n', 1, "unterminated multi-line"),
    ('if true { keep; ', 1, "unexpected end"),
    ('stop {}', 1, "takes no block"),
    ('if true;', 1, "needs a block"),
    ('keep; }', 1, "unexpected"),
    ('require "date"; if date "date" "century" "x" {}', 1, "unknown date part"),
    ('require "index"; if header :last "a" "b" {}', 1, ":last needs :index"),
    ('x = 1;', 1, "unexpected character"),
    ('if size :over 99999999999999999999999G {}', 1, "number too large"),
    ("if " + "not " * 40 + "true {}", 1, "nested too deeply"),
]


@pytest.mark.parametrize("script", VALID)
def test_valid_scripts_compile(script: str) -> None:
    compile_script(script)


@pytest.mark.parametrize(("script", "line", "message"), INVALID)
def test_invalid_scripts_name_line_and_reason(script: str, line: int, message: str) -> None:
    with pytest.raises(SieveSyntaxError) as info:
        compile_script(script)
    assert info.value.line == line
    assert message in info.value.text


def test_tokens_strings_numbers_tags() -> None:
    toks = tokenize('foo :Is "a\\"b\\\\c\\d" 10K 2m [ ] ;')
    assert [(t.kind, t.value) for t in toks] == [
        ("ident", "foo"), ("tag", "is"), ("string", 'a"b\\cd'), ("number", 10240), ("number", 2 << 20),
        ("punct", "["), ("punct", "]"), ("punct", ";"),
    ]  # fmt: skip


def test_multiline_string_dot_unstuffing() -> None:
    (node,) = parse('x text: # comment\r\nline one\r\n..two\r\n.\r\n;')
    assert node.args == ["line one\r\n.two\r\n"]


def test_arguments_and_string_lists() -> None:
    (node,) = parse('cmd :a 5 "s" ["x", "y"] test1 :b "z";')
    assert node.args == [Tag("a"), 5, "s", ["x", "y"]]
    assert node.tests[0].name == "test1" and node.tests[0].args == [Tag("b"), "z"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='requif fileto"keep;:{}[](),#*/\\\r\n 0123456789KMGxyz', max_size=200))
def test_fuzz_compile_raises_only_syntax_errors(text: str) -> None:
    try:
        compile_script(text)
    except SieveSyntaxError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_any_text(text: str) -> None:
    try:
        compile_script(text)
    except SieveSyntaxError:
        pass
