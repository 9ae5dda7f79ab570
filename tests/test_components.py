"""Components: life-cycle events, what a component sees, functional components and their fixtures, mixins."""

import pytest

import machinable as ml
from machinable.errors import CollectionError

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
