"""Tests for emorec.text: every cleaning stage on and off, the shipped resources, errors."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from emorec.text import CleaningConfig, TextCleaner
from emorec.text.cleaner import (
    cleaning_throughput,
    emoticon_dictionary,
    known_words,
    slang_dictionary,
)

DAIR_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "dair-emotion" / "train.txt"


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner()


def only_off(field: str) -> TextCleaner:
    return TextCleaner(CleaningConfig(**{field: False}))


# --- config ------------------------------------------------------------------------------------


def test_every_config_field_is_documented() -> None:
    for name, field in CleaningConfig.model_fields.items():
        assert field.description, f"CleaningConfig.{name} has no description"


def test_unknown_config_key_names_the_key() -> None:
    with pytest.raises(ValidationError, match="lowercse"):
        CleaningConfig.model_validate({"lowercse": False})


@pytest.mark.parametrize("value", [0, -1, "two"])
def test_bad_max_repeated_chars_is_rejected(value: object) -> None:
    with pytest.raises(ValidationError, match="max_repeated_chars"):
        CleaningConfig(max_repeated_chars=value)


def test_config_round_trips_through_a_dict() -> None:
    config = CleaningConfig(lowercase=False, max_repeated_chars=3)
    assert CleaningConfig.model_validate(config.model_dump()) == config


def test_cleaner_copies_its_config() -> None:
    config = CleaningConfig()
    cleaner = TextCleaner(config)
    config.lowercase = False
    assert cleaner.clean("HELLO") == "hello"
    assert cleaner.config.lowercase is True


def test_cleaner_rejects_a_dict_config() -> None:
    with pytest.raises(TypeError, match=r"got dict.*model_validate"):
        TextCleaner({"lowercase": False})  # type: ignore[arg-type]


# --- each stage on and off ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "on", "off"),
    [
        ("strip_html", "i &amp; you<br/>ok", "i & you ok", "i &amp; you<br/>ok"),
        ("strip_urls", "see https://t.co/abc now", "see now", "see https://t.co/abc now"),
        ("strip_urls", "visit www.example.com today", "visit today", "visit www.example.com today"),
        ("strip_mentions", "@bob thanks for this", "thanks for this", "@bob thanks for this"),
        ("strip_hashtag_symbol", "so #happy today", "so happy today", "so #happy today"),
        ("emoji_to_words", "i am 😂", "i am face with tears of joy", "i am 😂"),
        ("emoticons_to_words", "that was fun :)", "that was fun smile", "that was fun :)"),
        ("lowercase", "I Feel GREAT", "i feel great", "I Feel GREAT"),
        ("normalize_slang", "idk tbh", "i do not know to be honest", "idk tbh"),
        ("contract_repeated_chars", "i loooove it", "i love it", "i loooove it"),
    ],
)
def test_stage_on_and_off(field: str, text: str, on: str, off: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == on
    assert only_off(field).clean(text) == off


def test_all_stages_off_still_normalizes_whitespace() -> None:
    off = {name: False for name, f in CleaningConfig.model_fields.items() if f.annotation is bool}
    plain = TextCleaner(CleaningConfig(**off))
    assert plain.clean("  Hi   @bob\t#tag :) \n idk  ") == "Hi @bob #tag :) idk"


# --- slang -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # dair-ai/emotion splits apostrophes into spaces
        ("i m happy", "i am happy"),
        ("don t go", "do not go"),
        ("i didn t know", "i did not know"),
        ("it s fine", "it is fine"),
        ("i ve been there", "i have been there"),
        ("i can t sleep", "i cannot sleep"),
        ("don   t  go", "do not go"),
        # apostrophes, straight and curly
        ("I'm sure", "i am sure"),
        ("don't", "do not"),
        ("won't", "will not"),
        ("it's late", "it is late"),
        ("don’t", "do not"),
        # no apostrophe at all
        ("im tired", "i am tired"),
        ("i didnt feel humiliated", "i did not feel humiliated"),
        ("u r gr8", "you are great"),
        ("rn", "right now"),
        ("smh", "shaking my head"),
        ("omg lol", "oh my god laughing out loud"),
        ("ur pls plz thx b4 ily", "your please please thanks before i love you"),
        ("idk, lol!", "i do not know, laughing out loud!"),
        ("(idk)", "(i do not know)"),
    ],
)
def test_slang_expands(text: str, expected: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "let us be kind it is fine",
        "i feel ill as well as hell",
        "we were there its lets cause",
        "idkfa lollipop umbrella turn",
        "the u.s. and rock'n'roll",
        "u-turn",
    ],
)
def test_slang_leaves_ordinary_words_and_word_parts(text: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("idk", "i do not know"),
        ("IDK", "I DO NOT KNOW"),
        ("Idk", "I do not know"),
        ("Im here", "I am here"),
    ],
)
def test_slang_keeps_case_style_when_not_lowercasing(text: str, expected: str) -> None:
    assert only_off("lowercase").clean(text) == expected


def test_slang_dictionary_is_large_lowercase_and_never_identity() -> None:
    slang = slang_dictionary()
    assert len(slang) >= 300
    for key, value in slang.items():
        assert key == key.lower() == key.strip(), key
        assert value and value != key, key
    for ordinary in ("us", "it", "fine", "kind", "ill", "well", "were", "its", "lets", "hell"):
        assert ordinary not in slang
    for needed in ("i m", "don t", "didn t", "it s", "i ve", "don't", "i'm", "im", "dont"):
        assert needed in slang


def test_slang_dictionary_is_read_only() -> None:
    with pytest.raises(TypeError):
        slang_dictionary()["lol"] = "x"  # type: ignore[index]


# --- emoji and emoticons -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("😂", "face with tears of joy"),
        ("great👍", "great thumbs up"),
        ("love ❤️ it", "love red heart it"),
        ("😂😂😂😂😂😂", "face with tears of joy face with tears of joy"),
    ],
)
def test_emoji_become_words(text: str, expected: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == expected


@pytest.mark.parametrize(
    ("emoticon", "word"),
    [
        (":)", "smile"),
        (":-)", "smile"),
        (":(", "sad"),
        (":'(", "crying"),
        ("<3", "love"),
        ("</3", "heartbroken"),
        (":D", "laugh"),
        ("xD", "laugh"),
        ("XD", "laugh"),
        (";)", "wink"),
        (":P", "playful"),
        (":/", "skeptical"),
        (">:(", "angry"),
        (":o", "surprised"),
        ("^_^", "happy"),
        ("-_-", "annoyed"),
        ("T_T", "crying"),
        (":)))", "smile"),
        ("<333", "love"),
        (":DDD", "laugh"),
    ],
)
def test_emoticons_become_words(emoticon: str, word: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(f"so {emoticon} ok") == f"so {word} ok"
    assert cleaner.clean(emoticon) == word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("great :).", "great smile ."),  # sentence punctuation may follow
        ("lolxD a:Db", "lolxd a:db"),  # glued to a word: not an emoticon
        ("&lt;3 you", "love you"),  # unescaped by the html stage first
    ],
)
def test_emoticons_only_on_token_boundaries(text: str, expected: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == expected


def test_emoticon_does_not_fire_inside_a_url() -> None:
    keep_urls = only_off("strip_urls")
    assert keep_urls.clean("see http://x.com/a :/") == "see http://x.com/a skeptical"


def test_emoticon_values_are_words() -> None:
    table = emoticon_dictionary()
    assert len(table) >= 40
    assert all(value and value == value.lower() for value in table.values())


# --- html, urls, mentions, hashtags ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<p>Hello</p><br />world", "hello world"),
        ('<a href="http://x.com">link</a>', "link"),
        ("&quot;hi&quot; &amp; bye", '"hi" & bye'),
        ("a <b and c> d", "a <b and c> d"),  # prose with angle brackets is not a tag
        ("HTTPS://T.CO/X done", "done"),
        ("mail a@b.com now", "mail a@b.com now"),  # an email address is not a mention
        ("RT @user: hi @bob_2", "retweet hi"),
        ("#1 fan of C#", "1 fan of c#"),
    ],
)
def test_markup_links_mentions_hashtags(text: str, expected: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == expected


# --- repeated characters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loooove", "love"),
        ("happyyyyy", "happy"),
        ("soooo", "so"),
        ("gooood", "good"),
        ("sweeeeet", "sweet"),
        ("coffeeeee", "coffee"),
        ("hellooooo", "hello"),
        ("nowwwwww", "now"),
        ("!!!!!", "!!"),
        ("?????", "??"),
        ("plzzzz", "please"),  # repaired to a slang key, then expanded
        ("zzxxqqqq", "zzxxqq"),  # unknown word: runs capped at 2
    ],
)
def test_repeated_characters_contract(text: str, expected: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == expected


@pytest.mark.parametrize(
    "word", ["good", "too", "sweet", "hello", "coffee", "committee", "bookkeeper", "iii", "1000000"]
)
def test_repeated_characters_leave_real_words(word: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(word) == word


def test_max_repeated_chars_is_the_cap() -> None:
    three = TextCleaner(CleaningConfig(max_repeated_chars=3))
    assert three.clean("!!!!!! soooooo") == "!!! so"
    assert TextCleaner(CleaningConfig(max_repeated_chars=1)).clean("!!!!") == "!"


def test_known_words_hold_common_words_not_elongations() -> None:
    words = known_words()
    assert {"love", "good", "so", "happy", "coffee"} <= words
    assert "soo" not in words


# --- general behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\u00a0"])
def test_empty_and_whitespace_give_empty(text: str, cleaner: TextCleaner) -> None:
    assert cleaner.clean(text) == ""


def test_non_ascii_text_is_kept(cleaner: TextCleaner) -> None:
    text = "Café Ñandú 東京 مرحبا"
    assert cleaner.clean(text) == "café ñandú 東京 مرحبا"
    assert only_off("lowercase").clean(text) == text


def test_cleaning_is_deterministic(cleaner: TextCleaner) -> None:
    texts = ["OMG I loooove this!!!! 😂 http://t.co/x @bob", "i don t know :(", "gooood"]
    first = cleaner.clean_batch(texts)
    assert first == TextCleaner().clean_batch(texts) == [cleaner.clean(t) for t in texts]
    assert first == [
        "oh my god i love this!! face with tears of joy",
        "i do not know sad",
        "good",
    ]


def test_cleaner_pickles(cleaner: TextCleaner) -> None:
    restored = pickle.loads(pickle.dumps(cleaner))
    assert restored.config == cleaner.config
    assert restored.clean("idk :)") == cleaner.clean("idk :)")


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (3, "int"), (b"x", "bytes")])
def test_non_string_input_is_rejected(value: object, type_name: str, cleaner: TextCleaner) -> None:
    with pytest.raises(TypeError, match=f"expects a str, got {type_name}"):
        cleaner.clean(value)  # type: ignore[arg-type]


def test_batch_error_names_the_position(cleaner: TextCleaner) -> None:
    with pytest.raises(TypeError, match=r"float .*position 1"):
        cleaner.clean_batch(["fine", float("nan")])  # type: ignore[list-item]


def test_batch_rejects_a_single_string(cleaner: TextCleaner) -> None:
    with pytest.raises(TypeError, match="single str"):
        cleaner.clean_batch("not a list")


def test_clean_batch_accepts_any_iterable(cleaner: TextCleaner) -> None:
    assert cleaner.clean_batch(t for t in ["A", "b"]) == ["a", "b"]


def test_cleaning_throughput_reports_a_rate() -> None:
    assert cleaning_throughput(["idk :) soooo good"] * 50, repeats=1) > 0
    with pytest.raises(ValueError, match="repeats"):
        cleaning_throughput(["x"], repeats=0)
    with pytest.raises(ValueError, match="empty"):
        cleaning_throughput([])


# --- alignment: each cleaned word traced back to the user's text --------------------------------

# (text, [(cleaned word, the substring of text it came from), ...]) for every word of the output.
ALIGNED = [
    (
        "i loooove this song 😍 ... so nervous about tomorrow :(",
        [("i", "i"), ("love", "loooove"), ("this", "this"), ("song", "song")]
        + [(w, "😍") for w in ("smiling", "face", "with", "heart-eyes")]
        + [("..", "..."), ("so", "so"), ("nervous", "nervous"), ("about", "about")]
        + [("tomorrow", "tomorrow"), ("sad", ":(")],
    ),
    # emoticons keep their repeated last character and trailing punctuation outside
    (
        "great :))) . XD <333",
        [("great", "great"), ("smile", ":)))"), (".", "."), ("laugh", "XD"), ("love", "<333")],
    ),
    # links and mentions vanish, a hashtag's word comes from the whole '#tag'
    (
        "@bob: so #blessed http://t.co/x yes",
        [("so", "so"), ("blessed", "#blessed"), ("yes", "yes")],
    ),
    # slang expands to several words of one source, also across extra whitespace
    (
        "IDK   what  u mean",
        [(w, "IDK") for w in ("i", "do", "not", "know")]
        + [("what", "what"), ("you", "u"), ("mean", "mean")],
    ),
    ("i don  t care", [("i", "i"), ("do", "don  t"), ("not", "don  t"), ("care", "care")]),
    ("plzzz omgggg", [("please", "plzzz")] + [(w, "omgggg") for w in ("oh", "my", "god")]),
    # entities and tags
    (
        "tom &amp; jerry<br/>rock",
        [("tom", "tom"), ("&", "&amp;"), ("jerry", "jerry"), ("rock", "rock")],
    ),
    # one emoji run capped and named; an emoji glued to a word stays apart from it
    (
        "😂😂😂😂 café😍",
        [(w, "😂😂😂😂") for w in "face with tears of joy".split() * 2]
        + [("café", "café")]
        + [(w, "😍") for w in ("smiling", "face", "with", "heart-eyes")],
    ),
    # combining characters count as characters of their own, as in any Python str
    ("e\u0301te NAI\u0308VE", [("e\u0301te", "e\u0301te"), ("nai\u0308ve", "NAI\u0308VE")]),
    # a character that lowercases to two ('İ' -> 'i̇') still comes from one
    ("İstanbul !!!!!", [("i\u0307stanbul", "İstanbul"), ("!!", "!!!!!")]),
]


@pytest.mark.parametrize(("text", "expected"), ALIGNED, ids=[t for t, _ in ALIGNED])
def test_alignment_traces_each_word_to_the_users_text(
    text: str, expected: list[tuple[str, str]], cleaner: TextCleaner
) -> None:
    aligned = cleaner.align(text)
    assert aligned.text == cleaner.clean(text) and aligned.source == text
    words = aligned.text.split()
    sources = [text[start:end] for start, end in aligned.word_spans()]
    assert list(zip(words, sources, strict=True)) == expected


# Hard cases for the alignment to reproduce clean() on: every stage, Unicode corners.
TRICKY = [
    "",
    "   ",
    "OMG I loooove this!!!! 😂 http://t.co/x @bob",
    "<p>Tom &amp; Jerry&#39;s &ampxyz &lt;3</p> <!-- c --> a<b and c>d",
    "RT @user: www.x.com/#tag #😍 #1️⃣ 1️⃣ #️⃣ 👨‍👩‍👧 👍🏽 🇫🇷 ❤️ 🥰",
    "don’t DON'T Idk idk. u.s. rock'n'roll hmmmm gooood soooo 1000000",
    ":D :DDDD :'( :)) :). <3<3 XD xd",
    "ΟΔΟΣ İİİ ß ǅungla Ⅻ e\u0301\u0301 \u200d \u00a0 \x1c x\ty\nz",
    "😍😍😍!!!!... ¡¡¡¡ ¿¿¿",
    "half a pair \ud800 here",
]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lowercase": False},
        {"contract_repeated_chars": False},
        {"normalize_slang": False, "max_repeated_chars": 1},
        {"emoji_to_words": False, "strip_html": False, "strip_urls": False},
    ],
)
def test_alignment_gives_the_cleaned_text_and_spans_inside_the_source(
    config: dict[str, object],
) -> None:
    cleaner = TextCleaner(CleaningConfig.model_validate(config))
    for text in TRICKY:
        aligned = cleaner.align(text)
        assert aligned.text == cleaner.clean(text), text
        assert len(aligned.starts) == len(aligned.ends) == len(aligned.text)
        spans = aligned.word_spans()
        assert len(spans) == len(aligned.text.split())
        for (start, end), word in zip(spans, aligned.text.split(), strict=True):
            assert 0 <= start < end <= len(text), (text, word)
            assert text[start:end].strip(), (text, word)  # made from something, not space
        assert [s for s, _ in spans] == sorted(s for s, _ in spans)  # text order


def test_alignment_agrees_with_clean_on_random_mixtures() -> None:
    # Seeded mixtures of the pieces every stage reacts to, glued together or spaced apart.
    pieces = [piece for text in TRICKY for piece in text.split()] + ["", " ", "  ", "\t"]
    rng = random.Random(0)
    texts = [
        rng.choice(["", " "]).join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        for _ in range(400)
    ]
    for config in ({}, {"lowercase": False, "max_repeated_chars": 1}):
        cleaner = TextCleaner(CleaningConfig.model_validate(config))
        for text in texts:
            aligned = cleaner.align(text)
            assert aligned.text == cleaner.clean(text), text
            assert all(0 <= s < e <= len(text) for s, e in aligned.word_spans()), text


def test_alignment_of_an_unchanged_text_is_the_identity(cleaner: TextCleaner) -> None:
    aligned = cleaner.align("so nervous about tomorrow")
    assert aligned.starts == tuple(range(len(aligned.text)))
    assert aligned.ends == tuple(range(1, len(aligned.text) + 1))
    assert aligned.source_span(3, 10) == (3, 10)
    with pytest.raises(ValueError, match="start < end"):
        aligned.source_span(4, 4)
    with pytest.raises(TypeError, match="expects a str, got NoneType"):
        cleaner.align(None)  # type: ignore[arg-type]
