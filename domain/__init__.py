"""Steward's domain types: the leaf every other package imports and that imports none of them.

- `domain.payloads`: the MQTT payload contract, one schema per device family and stream.
- `domain.events`: the normalised `Event` every part after the gateway works with.
- `domain.topics`: the topic grammar.
"""
