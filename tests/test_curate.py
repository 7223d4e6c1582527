"""Curation filters: each drops what it should and says why."""

from cotlib import curate, data, export
from cotlib.export import Selection
from cotlib.records import CoTRecord


def rec(i, question, solution="Step 1: done.\nThe answer is \\boxed{1}.", reasoning=None, method="direct", trace=()):
    return CoTRecord(id=f"q{i}", question=question, answer="1", method=method, verified=True, solution=solution,
                     reasoning=reasoning, trace=list(trace), found_at_prefix=0 if method == "search" else None)


def test_difficulty_keeps_the_sometimes_solved():
    records = [rec(0, "always?"), rec(1, "sometimes?", method="search", trace=[{"event": "resample"}] * 3),
               rec(2, "never?")]
    assert curate.pass_rates(records[:2]) == {"q1": (1, 4)}  # q0: one sample, too few to rate
    rates = {**curate.pass_rates(records[:2]), "q0": (4, 4), "q2": (0, 4)}
    kept = curate.by_difficulty(Selection(records), rates)
    assert [r.id for r in kept.records] == ["q1"]
    assert kept.dropped == {"too easy (always solved)": 1, "too hard (never solved)": 1}


def test_exact_and_near_duplicates():
    records = [rec(0, "A train travels at 60 km/h for 3 hours. How far does it go?"),
               rec(1, "a train travels at 60 km/h for 3 hours.  How far does it go?"),  # same after normalization
               rec(2, "A train travels at 60 km/h for 3 hours. How far does it go in total?"),  # near
               rec(3, "What is 6 × 7?")]
    kept = curate.dedupe(Selection(records))
    assert [r.id for r in kept.records] == ["q0", "q3"]
    assert kept.dropped == {"duplicate question": 1, "near-duplicate question (Jaccard >= 0.8)": 1}


def test_decontamination_against_the_held_out_split():
    demo = data.bundled("demo")
    train, heldout = data.split(demo, "train"), data.split(demo, "heldout")
    records = [rec(i, p.question) for i, p in enumerate(train[:40])]
    leaked = rec(99, heldout[0].question + " Show your work.")
    kept = curate.decontaminate(Selection([*records, leaked]), [p.question for p in heldout])
    assert leaked not in kept.records and kept.dropped["contaminated (8-gram overlap with evaluation)"] >= 1
    assert curate.decontaminate(Selection(records), []).records == records


def test_trace_filters_length_loops_and_language():
    loop = "I think so. " * 200
    records = [rec(0, "What is 1 × 1?", reasoning="1 × 1 = 1."), rec(1, "What is 1 + 0?", reasoning=loop),
               rec(2, "What is 1 ÷ 1?", reasoning="x" * 20_000), rec(3, "计算 1 × 1 等于多少？"),
               rec(4, "计算 2 − 1 等于多少？", solution="第 1 步：2 − 1 = 1。\n答案是 \\boxed{1}。")]
    kept = curate.by_trace(Selection(records))
    assert [r.id for r in kept.records] == ["q0", "q4"]
    assert kept.dropped == {"repetitive (> 50% repeated 4-grams)": 1, "too long (> 16000 characters)": 1,
                            "language differs from the question's": 1}


def test_filters_chain_and_keep_earlier_reasons():
    sel = export.select([rec(0, "What is 1 × 1?").to_dict(), {**rec(1, "q?").to_dict(), "verified": False,
                                                              "solution": None}])
    chained = curate.dedupe(curate.by_trace(sel))
    assert chained.dropped["not verified"] == 1 and len(chained.records) == 1
    assert "dropped: not verified" in chained.summary()


def test_the_card_lists_what_curation_dropped():
    from cotlib import hub

    sel = curate.dedupe(Selection([rec(0, "What is 1 × 1?"), rec(1, "what is 1 × 1?")]))
    card = str(hub.build_card("me/x", 1, sel.records, curation=dict(sel.dropped)))
    assert "## Curation" in card and "| duplicate question | 1 |" in card
    assert "## Curation" not in str(hub.build_card("me/x", 1, sel.records))


def test_pass_rates_from_k_fresh_samples():
    from cotlib import config, generate
    from scripted_llm import AdditionWorld, ScriptedLLM

    world = AdditionWorld(3, hopeless={2}, period=2)  # a fresh sample is right every second time; question 2 never
    with ScriptedLLM(world) as server:
        endpoint = config.Endpoint(server.base_url, server.model, config.Secret("x"))
        rates = generate.pass_rates(data.load_qa(world.qa()), k=4, endpoint=endpoint,
                                    limits=generate.RunLimits(concurrency=1))
    by_question = {p.question: rates[p.id] for p in data.load_qa(world.qa())}
    assert sorted(by_question.values()) == [(0, 4), (2, 4), (2, 4)]
    kept = curate.by_difficulty(Selection([rec(i, q) for i, q in enumerate(by_question)]),
                                {f"q{i}": r for i, r in enumerate(by_question.values())})
    assert len(kept.records) == 2 and kept.dropped == {"too hard (never solved)": 1}
