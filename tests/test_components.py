"""Components: life-cycle events, what a component sees, functional components and their fixtures, mixins."""

import pytest

import machinable as ml
from machinable.errors import CollectionError, UsageError

EVENTS = """
    import machinable as ml

    EVENTS = []

    class Events(ml.Component):
        def on_seeding(self):
            EVENTS.append("on_seeding")
        def on_create(self):
            EVENTS.append("on_create")
        def on_execute(self):
            EVENTS.append("on_execute")
            if self.config.fail:
                raise ValueError("planned failure")
        def on_execute_iteration(self, i):
            EVENTS.append(f"iteration {i}")
            self.record["i"] = i
            if i == 2:
                return False
        def on_after_execute(self):
            EVENTS.append("on_after_execute")
        def on_success(self):
            EVENTS.append("on_success")
        def on_failure(self, exception):
            EVENTS.append(f"on_failure {exception}")
        def on_finish(self):
            EVENTS.append("on_finish")
        def on_destroy(self):
            EVENTS.append("on_destroy")
"""


def run(root, task, **kwargs):
    return ml.execute(task, project=root, echo=False, **kwargs)


def test_events_of_a_passing_trial_run_in_order_and_iterations_are_recorded(make_project):
    root = make_project("components:\n  - events:\n      fail: false\n", {"events.py": EVENTS})
    execution = run(root, "events")
    import events

    assert events.EVENTS == [
        "on_seeding", "on_create", "on_execute", "iteration 0", "iteration 1", "iteration 2",
        "on_after_execute", "on_success", "on_finish", "on_destroy",
    ]  # fmt: skip
    assert [(r["i"], r["_iteration"]) for r in execution.trials[0].records] == [(0, 0), (1, 1), (2, 2)]


def test_events_of_a_failing_trial_call_on_failure_and_still_finish(make_project):
    root = make_project("components:\n  - events:\n      fail: true\n", {"events.py": EVENTS})
    execution = run(root, "events")
    import events

    assert events.EVENTS == [
        "on_seeding", "on_create", "on_execute", "on_failure planned failure", "on_finish", "on_destroy",
    ]  # fmt: skip
    trial = execution.trials[0]
    assert trial.status == "failed"
    assert "ValueError: planned failure" in trial.error


def test_iterations_end_when_the_event_raises_stop_iteration(make_project):
    source = """
        import machinable as ml
        class Counter(ml.Component):
            def on_execute_iteration(self, i):
                if i == 3:
                    raise StopIteration
                self.record["value"] = i * i
    """
    root = make_project("components:\n  - counter\n", {"counter.py": source})
    records = run(root, "counter").trials[0].records
    assert [r["value"] for r in records] == [0, 1, 4]


def test_a_failing_iteration_keeps_what_it_recorded_under_its_iteration_number(make_project):
    source = """
        import machinable as ml
        class Diverging(ml.Component):
            def on_execute_iteration(self, i):
                self.record["loss"] = 10.0 ** i
                if i == 2:
                    raise FloatingPointError("diverged")
    """
    root = make_project("components:\n  - diverging\n", {"diverging.py": source})
    trial = run(root, "diverging").trials[0]
    assert trial.status == "failed" and "diverged" in trial.error
    assert [(r["loss"], r["_iteration"]) for r in trial.records] == [(1.0, 0), (10.0, 1), (100.0, 2)]


def test_a_component_sees_config_flags_seed_and_its_helpers(make_project):
    source = """
        import machinable as ml
        class Inspect(ml.Component):
            def on_execute(self):
                assert self.config.data.name == self.config["data"]["name"] == "mnist"
                assert self.flags.SEED == self.flags["SEED"] == self.seed
                assert self.flags.NODE_ID == "inspect"
                assert self.flags.REPEAT_TOTAL == 1 and self.flags.REPEAT_NUMBER == 0
                assert self.flags.CUSTOM == "mine"
                self.log.info("hello from the log")
                self.store("answer", 42)
                self.record["seed"] = self.seed
                self.record.save()
    """
    root = make_project("components:\n  - inspect:\n      data: {name: mnist}\n", {"inspect.py": source})
    execution = run(root, ml.Task().component("inspect", flags={"CUSTOM": "mine"}))
    trial = execution.trials[0]
    assert trial.status == "passed", trial.error
    assert trial.records[0]["seed"] == trial.seed
    assert trial.store["answer"] == 42


def test_a_missing_config_key_names_the_key_and_the_keys_that_exist(make_project):
    source = """
        import machinable as ml
        class Missing(ml.Component):
            def on_execute(self):
                self.config.learning_rat
    """
    root = make_project("components:\n  - missing:\n      learning_rate: 0.1\n", {"missing.py": source})
    error = run(root, "missing").trials[0].error
    assert "learning_rat" in error and "learning_rate" in error


def test_a_functional_component_receives_fixtures_by_parameter_name(make_project):
    source = """
        import machinable as ml

        @ml.component
        def fit(config, seed, flags, record, log, store, storage, tmp_path):
            assert flags.SEED == seed
            (tmp_path / "scratch.txt").write_text("ok")
            store("note.txt", "written by a function")
            record["lr"] = config.learning_rate
            record.save()
            return {"final": config.learning_rate * 2}
    """
    root = make_project("components:\n  - fit:\n      learning_rate: 0.5\n", {"fit.py": source})
    trial = run(root, "fit").trials[0]
    assert trial.status == "passed", trial.error
    assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in trial.records] == [
        {"lr": 0.5},
        {"final": 1.0},
    ]
    assert trial.store["note.txt"] == "written by a function"


def test_an_unknown_fixture_is_an_error_before_anything_runs(make_project):
    source = """
        import machinable as ml
        @ml.component
        def fit(config, sed):
            raise AssertionError("must not run")
    """
    root = make_project("components:\n  - fit\n", {"fit.py": source})
    with pytest.raises(CollectionError, match="fixture 'sed'.*did you mean 'seed'"):
        run(root, "fit")


def test_user_fixtures_in_machinable_conf_are_injected_and_torn_down(make_project):
    conf = """
        import machinable as ml
        TORN_DOWN = []

        @ml.fixture
        def dataset(config):
            yield [config.size] * 3
            TORN_DOWN.append("dataset")
    """
    source = """
        import machinable as ml
        @ml.component
        def fit(dataset, record):
            record["total"] = sum(dataset)
    """
    root = make_project(
        "components:\n  - fit:\n      size: 2\n", {"fit.py": source, "machinable_conf.py": conf}
    )
    trial = run(root, "fit").trials[0]
    assert trial.status == "passed", trial.error
    assert trial.records[0]["total"] == 6
    import machinable_conf

    assert machinable_conf.TORN_DOWN == ["dataset"]


def test_a_mixin_configuration_is_merged_underneath_and_its_methods_are_bound(make_project):
    yaml = """
        components:
          - classifier:
              _mixins_: [imagenet]
              data: {size: 32}
        mixins:
          - imagenet:
              data: {name: imagenet, size: 224}
    """
    mixin = """
        class Imagenet:
            def describe(self):
                return f"{self.config.data.name} at {self.config.data.size}px"
    """
    component = """
        import machinable as ml
        class Classifier(ml.Component):
            def on_execute(self):
                self.store("described", self._imagenet_.describe())
    """
    root = make_project(yaml, {"classifier.py": component, "imagenet.py": mixin})
    trial = run(root, "classifier").trials[0]
    assert trial.status == "passed", trial.error
    assert trial.config["data"] == {"name": "imagenet", "size": 32}
    assert trial.store["described"] == "imagenet at 32px"


def test_seeding_makes_random_numbers_repeat_for_the_same_seed(make_project):
    source = """
        import random
        import machinable as ml
        class Draw(ml.Component):
            def on_execute(self):
                self.record["draw"] = random.random()
    """
    root = make_project("components:\n  - draw\n", {"draw.py": source})
    first = run(root, "draw", seed=7).trials[0].records[0]["draw"]
    again = run(root, "draw", seed=7).trials[0].records[0]["draw"]
    other = run(root, "draw", seed=8).trials[0].records[0]["draw"]
    assert first == again != other


def test_overriding_on_seeding_takes_control_of_seeding(make_project):
    source = """
        import random
        import machinable as ml
        class Fixed(ml.Component):
            def on_seeding(self):
                random.seed(0)
            def on_execute(self):
                self.record["draw"] = random.random()
    """
    root = make_project("components:\n  - fixed\n", {"fixed.py": source})
    import random

    random.seed(0)
    expected = random.random()
    assert run(root, "fixed", seed=1).trials[0].records[0]["draw"] == expected
    assert run(root, "fixed", seed=2).trials[0].records[0]["draw"] == expected


def test_a_row_left_unsaved_is_kept_even_when_on_destroy_raises(make_project):
    source = """
        import machinable as ml

        class Leaky(ml.Component):
            def on_execute(self):
                self.record["loss"] = 0.5  # never saved by the component
            def on_destroy(self):
                raise RuntimeError("cannot release")
    """
    root = make_project("components:\n  - leaky\n", {"leaky.py": source})
    trial = run(root, "leaky").trials[0]
    assert trial.status == "failed"
    assert "RuntimeError: cannot release" in trial.error
    assert [row["loss"] for row in trial.records] == [0.5]


def test_a_failing_on_failure_still_runs_on_finish_and_on_destroy_and_keeps_both_errors(make_project):
    source = """
        import machinable as ml
        EVENTS = []

        class Clumsy(ml.Component):
            def on_execute(self):
                raise ValueError("first")
            def on_failure(self, exception):
                raise RuntimeError("while handling")
            def on_finish(self):
                EVENTS.append("on_finish")
            def on_destroy(self):
                EVENTS.append("on_destroy")
    """
    root = make_project("components:\n  - clumsy\n", {"clumsy.py": source})
    trial = run(root, "clumsy").trials[0]
    import clumsy

    assert clumsy.EVENTS == ["on_finish", "on_destroy"]
    assert trial.status == "failed"
    assert "ValueError: first" in trial.error and "RuntimeError: while handling" in trial.error


def test_flags_answer_hasattr_getattr_with_default_and_copy(make_project):
    source = """
        import copy
        import machinable as ml

        class Flagged(ml.Component):
            def on_execute(self):
                self.record["has_mine"] = hasattr(self.flags, "MINE")
                self.record["has_other"] = hasattr(self.flags, "OTHER")
                self.record["default"] = getattr(self.flags, "OTHER", "fallback")
                self.record["copied"] = copy.deepcopy(self.flags).MINE
    """
    root = make_project("components:\n  - flagged\n", {"flagged.py": source})
    trial = run(root, ml.Task().component("flagged", flags={"MINE": 7})).trials[0]
    assert trial.status == "passed", trial.error
    row = trial.records[0]
    assert (row["has_mine"], row["has_other"], row["default"], row["copied"]) == (True, False, "fallback", 7)


def test_a_functional_component_parameter_with_a_default_keeps_it_unless_a_fixture_has_its_name(make_project):
    source = """
        import machinable as ml

        @ml.component
        def fit(config, steps=3, *args, seed, **kwargs):
            return {"steps": steps, "seeded": isinstance(seed, int), "extra": len(args) + len(kwargs)}
    """
    root = make_project("components:\n  - fit\n", {"fit.py": source})
    trial = run(root, "fit").trials[0]
    assert trial.status == "passed", trial.error
    assert {k: v for k, v in trial.records[0].items() if not k.startswith("_")} == {
        "steps": 3,
        "seeded": True,
        "extra": 0,
    }


def test_every_fixture_teardown_runs_when_one_fails_and_the_trial_fails_with_its_error(make_project):
    conf = """
        import machinable as ml
        TORN_DOWN = []

        @ml.fixture
        def connection():
            yield "connection"
            TORN_DOWN.append("connection")

        @ml.fixture
        def cursor(connection):
            yield "cursor"
            raise RuntimeError("cursor teardown failed")
    """
    source = """
        import machinable as ml
        @ml.component
        def query(cursor, record):
            record["used"] = cursor
    """
    root = make_project("components:\n  - query\n", {"query.py": source, "machinable_conf.py": conf})
    trial = run(root, "query").trials[0]
    import machinable_conf

    assert machinable_conf.TORN_DOWN == ["connection"]
    assert trial.status == "failed" and "cursor teardown failed" in trial.error
    assert trial.records[0]["used"] == "cursor"


def test_a_failing_session_teardown_warns_and_the_execution_is_still_returned(make_project):
    conf = """
        import machinable as ml

        @ml.fixture(scope="session")
        def cluster():
            yield "cluster"
            raise RuntimeError("cluster teardown failed")
    """
    source = """
        import machinable as ml
        @ml.component
        def job(cluster):
            return {"on": cluster}
    """
    root = make_project("components:\n  - job\n", {"job.py": source, "machinable_conf.py": conf})
    with pytest.warns(
        RuntimeWarning, match="session fixture teardown failed: RuntimeError: cluster teardown failed"
    ):
        execution = run(root, ml.Task().component("job").repeat(2))
    assert [t.status for t in execution.trials] == ["passed", "passed"]


def test_a_session_fixture_asking_for_a_per_trial_value_is_an_error_before_anything_runs(make_project):
    conf = """
        import machinable as ml

        @ml.fixture(scope="session")
        def dataset(config):
            return [config.size]
    """
    source = """
        import machinable as ml
        @ml.component
        def fit(dataset):
            raise AssertionError("must not run")
    """
    root = make_project(
        "components:\n  - fit:\n      size: 2\n", {"fit.py": source, "machinable_conf.py": conf}
    )
    with pytest.raises(
        CollectionError, match="session fixture 'dataset' asks for 'config', which is made anew"
    ):
        run(root, "fit")


def test_a_fixture_asking_for_a_missing_fixture_is_an_error_before_anything_runs(make_project):
    conf = """
        import machinable as ml

        @ml.fixture
        def dataset(sise):
            return [sise]
    """
    source = """
        import machinable as ml
        @ml.component
        def fit(dataset):
            raise AssertionError("must not run")
    """
    root = make_project("components:\n  - fit\n", {"fit.py": source, "machinable_conf.py": conf})
    with pytest.raises(
        CollectionError, match="fixture 'dataset' asks for fixture 'sise', which does not exist"
    ):
        run(root, "fit")


def test_sys_exit_in_a_component_fails_the_trial_and_calls_on_failure(make_project):
    source = """
        import sys
        import machinable as ml
        class Quits(ml.Component):
            def on_execute(self):
                sys.exit(3)
            def on_failure(self, exception):
                self.store("failure", type(exception).__name__)
    """
    root = make_project("components:\n  - quits\n", {"quits.py": source})
    trial = run(root, "quits").trials[0]
    assert trial.status == "failed"
    assert "SystemExit: 3" in trial.error
    assert trial.store["failure"] == "SystemExit"


SLOW = """
    import time
    import machinable as ml

    class Slow(ml.Component):
        trial_timeout = 0.5
        trial_resources = {"num_cpus": 2, "memory": 10}

        def on_execute(self):
            time.sleep(float(self.config.get("sleep", 5)))

    @ml.component(timeout=0.5, resources={"num_gpus": 1})
    def slow_function(config):
        time.sleep(5)
"""


def test_a_component_class_sets_the_default_timeout_of_its_trials(make_project):
    root = make_project("components:\n  - slow\n", {"slow.py": SLOW})
    trial = run(root, "slow").trials[0]
    assert trial.status == "failed"
    assert "timed out after 0.5 s" in trial.error


def test_a_task_timeout_wins_over_the_component_default(make_project):
    root = make_project("components:\n  - slow:\n      sleep: 0.0\n", {"slow.py": SLOW})
    task = ml.Task().component("slow", {"sleep": 0.7}, timeout=5)
    assert run(root, task).trials[0].status == "passed"


def test_component_resources_are_defaults_that_the_task_extends(make_project):
    from machinable.collection.plan import plan_task
    from machinable.config.project import Project

    root = make_project("components:\n  - slow\n  - slow=slow_function\n", {"slow.py": SLOW})
    task = ml.Task().component("slow", resources={"memory": 20, "num_gpus": 1}).component("slow_function")
    specs = plan_task(task, Project(root), global_seed=1)
    assert specs[0].resources == {"num_cpus": 2, "memory": 20, "num_gpus": 1}
    assert (specs[0].timeout, specs[1].timeout, specs[1].resources) == (0.5, 0.5, {"num_gpus": 1})


def test_a_bad_component_timeout_is_a_clear_error(make_project):
    source = "import machinable as ml\nclass Odd(ml.Component):\n    trial_timeout = -1\n"
    root = make_project("components:\n  - odd\n", {"odd.py": source})
    with pytest.raises(UsageError, match="trial_timeout of component 'odd' must be a positive number"):
        run(root, "odd")
    with pytest.raises(UsageError, match="component timeout must be a positive number"):
        ml.component(timeout="soon")
