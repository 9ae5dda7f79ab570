"""Linear regression fitted by gradient descent, in plain Python: a small but real optimisation component."""

import random

import machinable as ml


class Optimization(ml.Component):
    def on_create(self):
        # A synthetic data set whose true weight and bias the fit should recover; self.seed makes it reproducible.
        rng = random.Random(self.seed)
        self.true_weight, self.true_bias = 2.0, -1.0
        self.xs = [rng.uniform(-1, 1) for _ in range(self.config.samples)]
        self.ys = [self.true_weight * x + self.true_bias + rng.gauss(0, self.config.noise) for x in self.xs]
        self.weight, self.bias = rng.gauss(0, 1), 0.0
        self.log.info("fitting %d samples of %s", self.config.samples, self.config.data.name)

    def on_execute_iteration(self, iteration):
        if iteration >= self.config.steps:
            return False
        n = len(self.xs)
        errors = [self.weight * x + self.bias - y for x, y in zip(self.xs, self.ys)]
        grad_w = 2 * sum(e * x for e, x in zip(errors, self.xs)) / n
        grad_b = 2 * sum(errors) / n
        self.weight -= self.config.learning_rate * grad_w
        self.bias -= self.config.learning_rate * grad_b
        self.record["loss"] = sum(e * e for e in errors) / n
        self.record["weight"] = self.weight

    def on_success(self):
        # The loss of the fitted line (the recorded rows hold the loss before each step's update).
        errors = [self.weight * x + self.bias - y for x, y in zip(self.xs, self.ys)]
        loss = sum(e * e for e in errors) / len(errors)
        self.log.info("final loss %.4f, weight %.4f (true %.1f), bias %.4f (true %.1f)", loss, self.weight,
                      self.true_weight, self.bias, self.true_bias)
        self.store("fit.json", {"weight": self.weight, "bias": self.bias, "loss": loss})
