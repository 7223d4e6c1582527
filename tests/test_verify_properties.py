"""Property tests for the verifier's number rules (issue #22): no rendering of one number verifies as another.

Each rendering says which integer it denotes (or ``None`` when it is no single integer); the verifier may accept it
for a golden integer only when that is the integer it denotes.
"""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cotlib.verify import check

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: every way a thousands separator is written: comma, space, LaTeX thin space, MATH's ",\!" and "{,}", thin and
#: narrow no-break spaces
SEPARATORS = [",", " ", "\\,", ",\\!", "{,}", "\u2009", "\u202f"]
integers = st.integers(min_value=-10**12, max_value=10**12)


def grouped(n: int, sep: str) -> str:
    sign, digits = ("-" if n < 0 else ""), str(abs(n))
    head = len(digits) % 3 or 3
    return sign + sep.join([digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)])


def boxed(answer: str) -> str:
    return f"Step 1: work.\n\\boxed{{{answer}}}"


@st.composite
def renderings(draw) -> tuple[int, str, int | None]:
    """(a, a rendering of a, the integer that rendering denotes or None)."""
    a = draw(integers)
    digits, sign = str(abs(a)), "-" if a < 0 else ""
    kind = draw(st.sampled_from(["grouped", "split", "bracket", "leading dot", "sign"]))
    if kind == "grouped":
        return a, grouped(a, draw(st.sampled_from(SEPARATORS))), a
    if kind == "split":  # a comma or a space anywhere between two digits
        if len(digits) < 2:
            return a, digits, abs(a) if not sign else a
        cut = draw(st.integers(1, len(digits) - 1))
        sep = draw(st.sampled_from([",", " ", "\\,", ", "]))
        text = sign + digits[:cut] + sep + digits[cut:]
        groups_of_three = len(digits) - cut == 3 and cut <= 3 and sep != ", " and not digits.startswith("0")
        return a, text, a if groups_of_three else None
    if kind == "bracket":
        left, right = draw(st.sampled_from([("(", ")"), ("[", "]"), ("\\{", "\\}"), ("\\left(", "\\right)")]))
        other = draw(st.integers(0, 999))
        items = [str(a), str(other)] if draw(st.booleans()) else [str(other), str(a)]
        return a, left + draw(st.sampled_from([",", ", ", " , "])).join(items) + right, None
    if kind == "leading dot":
        return a, f"{sign}.{digits}", 0 if set(digits) == {"0"} else None
    return a, str(-a), -a


@PROPERTY
@given(renderings(), integers)
def test_no_rendering_of_a_number_verifies_as_another(rendering, b):
    a, text, denotes = rendering
    verdict = check(boxed(text), str(b))
    assert verdict.correct == (denotes == b), (text, b, verdict)


@PROPERTY
@given(integers, st.sampled_from(SEPARATORS))
def test_every_thousands_separated_rendering_verifies(n, sep):
    text = grouped(n, sep)
    assert check(boxed(text), str(n)).correct, text
    assert check(boxed(str(n)), text).correct, text  # a golden answer written with separators
    assert not check(boxed(text), str(n + 1)).correct, text


spacing = st.sampled_from(["", " ", "  ", "\\ "])


@PROPERTY
@given(st.lists(st.integers(-999, 9999), min_size=2, max_size=4), st.sampled_from(["()", "[]", "[)", "(]"]),
       st.data())
def test_tuples_and_intervals_round_trip_with_any_spacing(items, brackets, data):
    if brackets != "()":  # an interval: two ends, in order
        items = sorted(set(items))[:2]
        assume(len(items) == 2)
    canonical = brackets[0] + ", ".join(map(str, items)) + brackets[1]
    spaced = brackets[0] + data.draw(spacing)
    spaced += "".join(f"{item}{data.draw(spacing)},{data.draw(spacing)}" for item in items[:-1]) + str(items[-1])
    spaced += data.draw(spacing) + brackets[1]
    assert check(boxed(spaced), canonical).correct, (spaced, canonical)
    changed = list(items)
    changed[data.draw(st.integers(0, len(items) - 1))] += data.draw(st.sampled_from([1, -1, 1000]))
    assume(brackets == "()" or changed[0] < changed[1])
    other = brackets[0] + ", ".join(map(str, changed)) + brackets[1]
    assert not check(boxed(spaced), other).correct, (spaced, other)
