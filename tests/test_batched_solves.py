"""attacks_ext._batched_solves: jobs in threads whose questions are answered in batches, and failures that stop
the run instead of hanging it."""

from __future__ import annotations

import pytest

from attacks_ext._batched_solves import BatchedEvaluations


def squares(items):
    return [item * item for item in items]


def test_every_job_gets_its_own_answers_and_batches_hold_every_running_job():
    answers = {}

    def job(n):
        def run():
            answers[n] = [batches.ask(n + 10 * k) for k in range(n + 1)]  # job n asks n + 1 questions

        return run

    batches = BatchedEvaluations(squares)
    batches.run((job(n) for n in range(6)), width=3)
    assert answers == {n: [(n + 10 * k) ** 2 for k in range(n + 1)] for n in range(6)}
    assert sum(batches.batch_sizes) == sum(n + 1 for n in range(6))
    assert batches.batch_sizes[0] == 3 and max(batches.batch_sizes) == 3


def test_a_failing_evaluation_stops_the_run_and_is_raised():
    def evaluate(items):
        if 7 in items:
            raise RuntimeError("network failed on 7")
        return items

    batches = BatchedEvaluations(evaluate)
    jobs = [lambda n=n: [batches.ask(n) for _ in range(50)] for n in range(10)]
    with pytest.raises(RuntimeError, match="network failed on 7"):
        batches.run(jobs, width=4)


def test_a_failing_job_stops_the_others_and_is_raised():
    asked = []

    def evaluate(items):
        asked.extend(items)
        return items

    def bad():
        batches.ask(-1)
        raise ValueError("job -1 broke")

    batches = BatchedEvaluations(evaluate)
    endless = [lambda n=n: [batches.ask(n) for _ in range(10**6)] for n in range(3)]
    with pytest.raises(ValueError, match="job -1 broke"):
        batches.run([bad, *endless], width=4)
    assert len(asked) < 10**5  # the endless jobs stopped at their next question
