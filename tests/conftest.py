"""Test harness: the real peers (Kafka broker, HubSpot sandbox) are fixtures in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.sandbox",
    "tests.fixtures.services",
]
