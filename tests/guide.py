"""The machinable.yaml of the guide (DESIGN.md §3), which many tests start from."""

GUIDE_YAML = """
components:
  - optimization:
      learning_rate: 0.001
      data: {name: cifar10, augmentation: False}
      ~mnist:
        data: {name: mnist}
      ~alexnet:
        learning_rate: 0.1
        data: {name: imagenet}
mixins:
  - imagenet:
      data: {name: imagenet, size: 224}
"""
