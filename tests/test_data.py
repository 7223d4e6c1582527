"""Loading and validating question/answer data; the bundled sample and demo sets."""

import json
import re
import threading
from fractions import Fraction
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sympy

from cotlib import data, search, verify
from cotlib.data import QADataError, load_qa

ORIGINAL = {"how many r in strawberry?": "3", "What is 1/2 + 1/3?": "\\frac{5}{6}"}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_original_dict_format_from_file_and_object(tmp_path):
    path = write(tmp_path, "qa.json", json.dumps(ORIGINAL))
    pairs = load_qa(path)
    assert [(p.question, p.answer) for p in pairs] == list(ORIGINAL.items())
    assert load_qa(ORIGINAL) == pairs
    export = write(tmp_path, "export.json", json.dumps({"timestamp": "2025-01-01", "qa_pairs": ORIGINAL}))
    assert load_qa(export) == pairs


def test_list_jsonl_bom_numbers_and_meta(tmp_path):
    rows = [{"question": "2+2?", "answer": 4, "source": "x"}, {"question": "half of 3?", "answer": 1.5}]
    listed = load_qa(write(tmp_path, "a.json", "\ufeff" + json.dumps(rows)))
    jsonl = load_qa(write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n"))
    assert listed == jsonl
    assert [p.answer for p in listed] == ["4", "1.5"]
    assert listed[0].meta == {"source": "x"}


def test_ids_are_stable_and_ignore_case_and_spacing():
    a = data.question_id("How many  r in strawberry?")
    assert a == data.question_id(" how many r in STRAWBERRY? ") and len(a) == 12
    assert a != data.question_id("How many r in raspberry?")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"q1": "a",\n "q2": }', r"bad\.json:2:8: invalid JSON"),
        ("top.json", '"just a string"', r"top\.json: top level must be an object"),
        ("blankq.json", '{"  ": "3"}', r"question is empty"),
        ("blanka.json", '{"q": "  "}', r"question 'q': answer is empty"),
        ("null.json", '{"q": null}', r"answer is null"),
        ("list.json", '{"q": [1, 2]}', r"answer is a list"),
        ("dict.json", '[{"question": "q", "answer": {"x": 1}}]', r"dict\.json: item 0: answer is an object"),
        ("bool.json", '{"q": true}', r"answer is a boolean"),
        ("missing.json", '[{"question": "q"}]', r"item 0: missing field 'answer'"),
        ("notobj.json", '[["q", "a"]]', r"item 0: expected an object"),
        ("dupkey.json", '{\n"q": "1",\n"r": "2",\n"q": "3"\n}', r"dupkey\.json:4: duplicate question 'q'"),
        ("dupnorm.json", '{"How many?": "1", "how  many?": "1"}', r"duplicate question 'how  many\?'"),
        ("empty.json", "  \n", r"empty\.json: empty file"),
        ("latin1.json", '{"caf\xe9": "1"}'.encode("latin-1"), r"latin1\.json:1: not UTF-8 \(byte 0xe9"),
        ("bad.jsonl", '{"question": "a", "answer": "1"}\n\n{"question": "b" "answer": 2}\n', r"bad\.jsonl:3:\d+: invalid JSON line"),
        ("miss.jsonl", '{"question": "a", "answer": "1"}\n{"answer": "2"}\n', r"miss\.jsonl:2: missing field 'question'"),
    ],
)
def test_bad_input_names_file_and_place(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(QADataError, match=message) as err:
        load_qa(path)
    assert "\n" not in str(err.value)  # one clear line


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(QADataError, match=r"nope\.json: no such file"):
        load_qa(tmp_path / "nope.json")
    with pytest.raises(QADataError, match="is a directory"):
        load_qa(tmp_path)


@pytest.fixture
def http_dir(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_fetch_downloads_validates_and_falls_back(http_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("COTLIB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    root, url = http_dir
    write(root, "qa.json", json.dumps(ORIGINAL))
    write(root, "broken.json", "{not json")
    path, note = data.fetch_qa(f"{url}/qa.json", tmp_path / "out" / "qa.json")
    assert note.startswith("downloaded") and load_qa(path) == load_qa(ORIGINAL)
    assert load_qa(f"{url}/qa.json") == load_qa(ORIGINAL)

    path, note = data.fetch_qa(f"{url}/broken.json", tmp_path / "b.json")
    assert "download failed" in note and "bundled copy" in note and load_qa(path) == data.bundled("sample")
    path, note = data.fetch_qa(f"{url}/missing.json", tmp_path / "m.json")
    assert "404" in note and load_qa(path) == data.bundled("sample")
    with pytest.raises(QADataError, match="download failed"):
        load_qa(f"{url}/missing.json")

    monkeypatch.setenv("COTLIB_OFFLINE", "1")
    path, note = data.fetch_qa(f"{url}/qa.json", tmp_path / "o.json")
    assert note.startswith("offline mode") and load_qa(path) == data.bundled("sample")


def test_save_round_trip(tmp_path):
    pairs = data.bundled("demo")[:20]
    assert data.read_qa_file(data.save_qa(pairs, tmp_path / "x.jsonl")) == pairs
    assert [p.meta for p in data.read_qa_file(tmp_path / "x.jsonl")] == [p.meta for p in pairs]


def test_original_sample_is_bundled():
    pairs = data.bundled("sample")
    assert len(pairs) == 2 and pairs[0].answer == "\\frac{63}{400}" and pairs[1].answer == "3"
    with pytest.raises(ValueError, match="unknown bundled dataset"):
        data.bundled("nope")


def test_demo_set_is_the_seeded_generator_output():
    bundled = data.bundled("demo")
    assert bundled == data.make_demo_set()
    assert [p.meta for p in bundled] == [p.meta for p in data.make_demo_set()]
    assert len(bundled) >= 300
    kinds = {(p.meta["type"], p.meta["lang"]) for p in bundled}
    assert kinds == {(t, lang) for t in data.TASK_TYPES for lang in ("en", "zh")}
    held, train = data.split(bundled, "heldout"), data.split(bundled, "train")
    assert len(held) + len(train) == len(bundled) and 0.15 < len(held) / len(bundled) < 0.25
    assert not {p.id for p in held} & {p.id for p in train}
    assert data.make_demo_set(seed=1) != bundled


def test_every_reference_solution_is_stepwise_and_verifies():
    demo = data.bundled("demo")
    assert {p.meta["tier"] for p in demo if p.meta["type"] in data.EASY_TYPES} == {"easy"}
    for pair in demo:
        reference = pair.meta["reference"]
        assert verify.check(reference, pair.answer).correct, (pair.question, reference)
        assert reference.startswith("第 1 步：" if pair.meta["lang"] == "zh" else "Step 1: ")
        assert len(search.split_steps(reference)) >= 2


def test_every_demo_answer_verifies_against_itself():
    for pair in data.bundled("demo"):
        assert verify.check(f"Step 1: work.\nSo \\boxed{{{pair.answer}}}", pair.answer).correct, pair


def _independent_answer(pair):
    """Recompute a golden answer from the question text alone (English questions of four types)."""
    q = pair.question
    if pair.meta["type"] == "arithmetic":
        a, op, b = re.fullmatch(r"What is (\d+) (\S) (\d+)\?", q).groups()
        return str(sympy.sympify(f"{a}{ {'×': '*', '÷': '/'}.get(op, op)}{b}"))
    if pair.meta["type"] == "letter_count":
        letter, word = re.fullmatch(r'How many times does the letter "(.)" appear in the word "(\w+)"\?', q).groups()
        return str(word.count(letter))
    if pair.meta["type"] == "linear_equation":
        x = sympy.Symbol("x")
        lhs, rhs = q.removeprefix("Solve for x: ").rstrip(".").split(" = ")
        return str(sympy.solve(sympy.sympify(lhs.replace("x", "*x")) - int(rhs), x)[0])
    if pair.meta["type"] == "binomial" and "coefficient" in q:
        k, m = map(int, re.search(r"\$x\^\{(\d+)\}y\^\{(\d+)\}\$", q).groups())
        p, r, c, n = map(int, re.search(r"\\frac\{(\d+)\}\{(\d+)\}x-\\frac\{y\}\{(\d+)\}\\right\)\^(\d+)", q).groups())
        x, y = sympy.symbols("x y")
        coeff = sympy.expand((sympy.Rational(p, r) * x - y / c) ** n).coeff(x, k).coeff(y, m)
        return str(coeff)
    return None


def test_demo_answers_match_an_independent_computation():
    checked = 0
    for pair in data.bundled("demo"):
        if pair.meta["lang"] != "en":
            continue
        expected = _independent_answer(pair)
        if expected is not None:
            got = pair.answer
            if got.startswith(("\\frac", "-\\frac")):
                num, den = re.findall(r"\d+", got)
                got = str(Fraction(int(num), int(den)) * (-1 if got.startswith("-") else 1))
            assert got == expected, (pair.question, pair.answer, expected)
            checked += 1
    assert checked >= 90


def test_a_trailing_comma_is_named_the_same_on_every_python():
    for text, where in (('{"q": "1",}', "x.json:1:10"), ('{"q": "1",\n}', "x.json:1:10"), ('{"q": ["1", ]}', "x.json:1:11")):
        with pytest.raises(data.QADataError) as raised:
            data.parse_qa_text(text, "x.json", jsonl=False)
        assert str(raised.value).startswith(f"{where}: invalid JSON: trailing comma before")
